//! `simguard demo`: the platform plus a simulated fleet, on embedded
//! defaults. Restarting on the same data directory continues where it was.

use crate::client::ApiClient;
use crate::cmd::fleet_inventory;
use anyhow::{Context, Result};
use clap::Args;
use simguard_engine::locate::CellKey;
use simguard_server::access::password as pw;
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use simguard_sim::{Mode, ProfileMix, SimConfig};
use simguard_store::{AccessStore, CellRow, Radio, Role, Store};
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

/// Puts the simulated networks' cells into the cell table (once per data
/// directory), so that the fleet's User-Location-Info resolves to positions
/// spread over each country rather than one point per country.
fn import_cell_plan(cfg: &Config) -> Result<u64> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let mut store = Store::open(cfg.store_path())?;
    let plan = || {
        simguard_sim::cell_plan().map(|c| CellRow {
            radio: if c.lte { Radio::Lte } else { Radio::Gsm },
            key: CellKey {
                mcc: c.mcc,
                mnc: c.mnc,
                area: c.area,
                cell: c.cell,
            },
            lat: c.lat,
            lon: c.lon,
            range_m: c.range_m,
            samples: 1,
        })
    };
    let want = plan().count() as u64;
    if store.cell_count_from("demo")? != want {
        let t = std::time::Instant::now();
        let done = store.import_cells(plan(), "demo", 50_000, |_| {})?;
        tracing::info!(
            rows = done.rows,
            ms = t.elapsed().as_millis() as u64,
            "simulated cell plan imported"
        );
    }
    Ok(want)
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

/// The demo's console password when SIMGUARD_DEMO_PASSWORD does not give
/// one. The demo serves loopback only, and prints it at start.
pub const DEMO_PASSWORD: &str = "simguard-demo";

/// The demo's console users: an operator-wide admin, an operator for each
/// demo tenant, and a viewer of the first.
pub fn demo_users() -> Vec<(String, Role, Option<String>)> {
    let mut users = vec![("admin".to_string(), Role::Admin, None)];
    let mut tenants: Vec<&'static str> = Vec::new();
    for p in simguard_sim::Profile::ALL {
        let t = simguard_sim::placement(p).tenant;
        if !tenants.contains(&t) {
            tenants.push(t);
        }
    }
    for t in &tenants {
        users.push((format!("{t}-operator"), Role::Operator, Some(t.to_string())));
    }
    if let Some(t) = tenants.first() {
        users.push((format!("{t}-viewer"), Role::Viewer, Some(t.to_string())));
    }
    users
}

/// Creates the demo users that are missing and gives every one of them
/// `password` (a restart with another SIMGUARD_DEMO_PASSWORD changes it).
fn seed_users(store: &Path, password: &str) -> Result<Vec<(String, Role, Option<String>)>> {
    let mut a = AccessStore::open(store)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let users = demo_users();
    for (name, role, tenant) in &users {
        match a.credentials(name)? {
            None => {
                a.add_user(name, &pw::hash(password)?, *role, tenant.as_deref(), now)?;
            }
            Some(c) if !pw::verify(password, &c.password_hash) => {
                a.set_password(name, &pw::hash(password)?, now)?;
            }
            Some(_) => {}
        }
    }
    Ok(users)
}

pub(crate) fn rand_u64() -> u64 {
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
    let mut cfg = Config::load(None)?;
    // A notification channel with a real peer, unless the environment's
    // configuration brings its own: the demo serves a webhook receiver
    // that checks every signature, so Settings and subscriptions work
    // without an SMTP server or SMSC.
    let hook = if cfg.notify.channels.is_empty() {
        let hook = crate::cmd::demo_hook::start(crate::cmd::demo_hook::secret()).await?;
        crate::cmd::demo_hook::configure(&mut cfg.notify, &hook)?;
        Some(hook)
    } else {
        None
    };
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
    let password = std::env::var("SIMGUARD_DEMO_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEMO_PASSWORD.to_string());
    pw::check_new(&password).map_err(|m| anyhow::anyhow!("SIMGUARD_DEMO_PASSWORD: {m}"))?;
    let store_path = cfg.store_path();
    let cells = import_cell_plan(&cfg)?;
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(token.clone()),
        },
    )
    .await?;
    let users = tokio::task::spawn_blocking(move || seed_users(&store_path, &password))
        .await
        .context("seeding the demo users")??;
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
    println!(
        "  cells       {cells} simulated cells with positions (devices on the map: {base}/api/v1/map/devices)"
    );
    println!("  RADIUS      udp://{} (accounting)", server.acct_addr);
    println!(
        "  IPFIX       udp://{} (flows from the simulated fleet)",
        server.ipfix_addr
    );
    let pw_note = if std::env::var("SIMGUARD_DEMO_PASSWORD").is_ok_and(|p| !p.is_empty()) {
        "the password of SIMGUARD_DEMO_PASSWORD".to_string()
    } else {
        format!("password {DEMO_PASSWORD}")
    };
    println!("  console     {base}/  (log in as one of these users, {pw_note})");
    for (i, (n, r, t)) in users.iter().enumerate() {
        let label = if i == 0 { "  users" } else { "" };
        match t {
            Some(t) => println!("{label:<14}{n} ({} of tenant {t})", r.as_str()),
            None => println!("{label:<14}{n} ({}, every tenant)", r.as_str()),
        }
    }
    println!("  API         {base}/api/v1/devices");
    println!("  token       {token}");
    println!(
        "  try         curl -s -H 'Authorization: Bearer {token}' '{base}/api/v1/devices?limit=5'"
    );
    println!("  findings    {base}/api/v1/findings  (live: curl -N -H 'Authorization: Bearer {token}' {base}/api/v1/events)");
    println!("  metrics     {base}/metrics");
    if let Some(h) = &hook {
        println!(
            "  notify      webhook channel {} -> {} (a receiver in this process that checks each signature); subscribe in Settings",
            crate::cmd::demo_hook::CHANNEL,
            h.url
        );
    }
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
    if let Some(h) = &hook {
        use std::sync::atomic::Ordering;
        println!(
            "demo webhook: {} notifications received with a valid signature, {} refused",
            h.counts.verified.load(Ordering::Relaxed),
            h.counts.refused.load(Ordering::Relaxed)
        );
    }
    Ok(())
}
