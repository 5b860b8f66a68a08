//! `simguard sim`: a simulated fleet (or a constant load) over real RADIUS
//! accounting to a running server.

use crate::client::ApiClient;
use crate::cmd::fleet_inventory;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use simguard_sim::{Mode, ProfileMix, Scenario, ScenarioRun, SimConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum)]
pub enum SimMode {
    /// Device profiles on their own schedules (Start/Interim/Stop).
    Fleet,
    /// Interim updates at a constant rate, for throughput and latency benchmarks.
    Load,
}

#[derive(Args)]
pub struct SimArgs {
    /// RADIUS accounting server.
    #[arg(long, default_value = "127.0.0.1:1813")]
    pub target: SocketAddr,
    /// Shared secret of the NAS entry the server has for our source address.
    #[arg(
        long,
        env = "SIMGUARD_SIM_SECRET",
        default_value = "simguard-local-secret"
    )]
    pub secret: String,
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Profile weights, e.g. "smart-meter=50,pallet-tracker=25,camera=5".
    #[arg(long)]
    pub mix: Option<String>,
    /// Simulated seconds per wall second (default 1; with --scenario, as fast as the
    /// server answers).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Simulated start time, Unix seconds (default: now).
    #[arg(long)]
    pub start: Option<u64>,
    /// Most requests per second.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u32,
    /// Stop after this many wall seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many simulated seconds.
    #[arg(long)]
    pub sim_duration: Option<f64>,
    #[arg(long, value_enum, default_value = "fleet")]
    pub mode: SimMode,
    /// UDP sockets (each carries up to 256 requests in flight).
    #[arg(long, default_value_t = 16)]
    pub sockets: usize,
    /// Seconds before the first retransmission.
    #[arg(long, default_value_t = 1.0)]
    pub timeout: f64,
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Do not add Message-Authenticator.
    #[arg(long)]
    pub no_message_authenticator: bool,
    /// Share of devices left out of the inventory (they show as unprovisioned).
    #[arg(long, default_value_t = 0.002)]
    pub unprovisioned_share: f64,
    /// Write every request and whether it was answered, as JSON lines (and every
    /// exported flow, with --ipfix-target).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Also export IPFIX for the fleet's traffic to this collector (fleet mode): flows
    /// from and to the sessions' Framed-IP addresses adding up to the accounting.
    #[arg(long, value_name = "ADDR", value_parser = boxed_socket_addr)]
    pub ipfix_target: Option<Box<SocketAddr>>,
    /// Observation Domain ID of the IPFIX messages.
    #[arg(long, default_value_t = 1)]
    pub ipfix_domain: u32,
    /// Provision the fleet's inventory into this server's API first.
    #[arg(long)]
    pub provision: Option<String>,
    #[arg(long, env = "SIMGUARD_TOKEN")]
    pub token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run an attack-lab scenario (TOML, see scenarios/): its fleet, time span,
    /// benign variety and attacks replace --devices, --seed, --mix, --start and
    /// --sim-duration.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// With --scenario: write the ground-truth labels here, one JSON line per attack.
    #[arg(long, value_name = "OUT.jsonl", requires = "scenario")]
    pub labels: Option<PathBuf>,
    /// With --scenario: write the run's report (labels, benign IMSIs, device-days) as JSON.
    #[arg(long, value_name = "FILE", requires = "scenario")]
    pub report: Option<PathBuf>,
    /// With --scenario: most IPFIX flow records per second (0: no limit).
    #[arg(long, default_value_t = 100_000)]
    pub flow_rate: u32,
}

/// Boxed so that `SimArgs` stays small enough for the `Command` enum (clippy's
/// large_enum_variant).
fn boxed_socket_addr(s: &str) -> Result<Box<SocketAddr>, String> {
    s.parse::<SocketAddr>()
        .map(Box::new)
        .map_err(|e| format!("{e} (expected IP:PORT, e.g. 127.0.0.1:4739)"))
}

pub fn config_from(a: &SimArgs) -> Result<SimConfig> {
    let mut c = SimConfig::new(a.target, a.secret.clone());
    c.seed = a.seed;
    c.devices = a.devices;
    if let Some(m) = &a.mix {
        c.mix = m.parse().map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
    }
    c.unprovisioned_share = a.unprovisioned_share;
    c.speed = a.speed.unwrap_or(1.0);
    c.start_unix = a.start.unwrap_or(0);
    c.rate = a.rate;
    c.duration = a.duration.map(Duration::from_secs_f64);
    c.sim_duration = a.sim_duration.map(Duration::from_secs_f64);
    c.sockets = a.sockets;
    c.timeout = Duration::from_secs_f64(a.timeout);
    c.retries = a.retries;
    c.message_authenticator = !a.no_message_authenticator;
    c.record_to = a.record.clone();
    c.ipfix_target = a.ipfix_target.as_deref().copied();
    c.ipfix_observation_domain = a.ipfix_domain;
    c.mode = match a.mode {
        SimMode::Fleet => Mode::Fleet,
        SimMode::Load => Mode::Load {
            rate: a.rate,
            duration: Duration::from_secs_f64(a.duration.unwrap_or(10.0)),
        },
    };
    if c.ipfix_target.is_some() && matches!(c.mode, Mode::Load { .. }) {
        anyhow::bail!("--ipfix-target needs --mode fleet");
    }
    Ok(c)
}

/// How `simguard sim --scenario` runs the scenario.
pub fn scenario_run(a: &SimArgs) -> Result<ScenarioRun> {
    let mut r = ScenarioRun::new(a.target, a.secret.clone());
    r.ipfix_target = a.ipfix_target.as_deref().copied();
    r.labels_path = a.labels.clone();
    r.record_to = a.record.clone();
    r.speed = a.speed.unwrap_or(f64::INFINITY);
    if r.speed.is_nan() || r.speed <= 0.0 {
        anyhow::bail!("--speed must be positive");
    }
    r.rate = a.rate;
    r.flow_rate = a.flow_rate;
    r.sockets = a.sockets;
    r.timeout = Duration::from_secs_f64(a.timeout);
    r.retries = a.retries;
    r.ipfix_observation_domain = a.ipfix_domain;
    Ok(r)
}

async fn run_scenario(a: &SimArgs, path: &std::path::Path) -> Result<()> {
    if matches!(a.mode, SimMode::Load) {
        anyhow::bail!("--scenario needs --mode fleet");
    }
    let scenario = Scenario::load(path)?;
    if let Some(url) = &a.provision {
        let token = a
            .token
            .clone()
            .or_else(|| std::env::var("SIMGUARD_ADMIN_TOKEN").ok())
            .context("--provision needs --token or SIMGUARD_TOKEN")?;
        let api = ApiClient::new(url, &token)?;
        let n = fleet_inventory::provision_scenario(&api, &scenario, &scenario.devices()).await?;
        eprintln!("provisioned {n} devices into {url}");
    }
    let mut run = scenario_run(a)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::cmd::serve::stop_signal().await;
        let _ = stop_tx.send(true);
    });
    run.shutdown = Some(stop_rx);
    let report = simguard_sim::run_scenario(&scenario, run).await?;
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.sim);
        println!(
            "scenario        {} ({} attack instances labelled, {} benign devices, {:.1} benign device-days after warm-up)",
            report.scenario,
            report.labels.len(),
            report.benign_imsis.len(),
            report.benign_device_days
        );
        if let Some(p) = &a.labels {
            println!("labels          {}", p.display());
        }
    }
    Ok(())
}

pub async fn run(a: SimArgs) -> Result<()> {
    if let Some(path) = a.scenario.clone() {
        return run_scenario(&a, &path).await;
    }
    let cfg = config_from(&a)?;
    if let Some(url) = &a.provision {
        let token = a
            .token
            .clone()
            .or_else(|| std::env::var("SIMGUARD_ADMIN_TOKEN").ok())
            .context("--provision needs --token or SIMGUARD_TOKEN")?;
        let api = ApiClient::new(url, &token)?;
        let mix: ProfileMix = cfg.mix.clone();
        let fleet = simguard_sim::fleet(cfg.seed, cfg.devices, &mix, cfg.unprovisioned_share);
        let n = fleet_inventory::provision(&api, &fleet).await?;
        eprintln!("provisioned {n} devices into {url}");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::cmd::serve::stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let report = simguard_sim::run(cfg, stop_rx).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
