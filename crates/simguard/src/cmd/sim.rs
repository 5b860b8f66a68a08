//! `simguard sim`: a simulated fleet (or a constant load) over real RADIUS
//! accounting to a running server.

use crate::client::ApiClient;
use crate::cmd::fleet_inventory;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use simguard_sim::{Mode, ProfileMix, SimConfig};
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
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
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
    c.speed = a.speed;
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

pub async fn run(a: SimArgs) -> Result<()> {
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
