//! `simguard eval`: runs an attack-lab scenario through a real server, over
//! the wire (RADIUS accounting and IPFIX on UDP, findings read back through
//! the HTTP API), and scores what detection found against the scenario's
//! ground truth. See `crate::score` for the rules. With `--iot23 DIR` it
//! replays the labelled IoT-23 captures instead (or as well): see
//! `cmd::eval_iot23`.

use crate::client::ApiClient;
use crate::cmd::fleet_inventory;
use crate::score::{self, Evaluation, Found, Truth};
use anyhow::{bail, Context, Result};
use clap::Args;
use simguard_server::config::{Config, TEMPLATE};
use simguard_server::{Server, StartOptions};
use simguard_sim::{Scenario, ScenarioRun};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct EvalArgs {
    /// Scenario file (TOML), e.g. scenarios/small.toml.
    #[arg(long, required_unless_present = "iot23")]
    pub scenario: Option<PathBuf>,
    /// Replay the labelled IoT-23 captures (Zeek conn.log CSVs) in DIR as
    /// IPFIX, each capture's device bound to a SIM through accounting, and
    /// report what was found per label. DIR defaults to
    /// $SIMGUARD_SHARED_DATA/iot23, else ../shared/data/iot23.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub iot23: Option<Option<PathBuf>>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the ground-truth labels (JSONL) to this file.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Keep the server's data directory here (default: a temporary one,
    /// deleted at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Most RADIUS requests per second from the simulator.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u32,
    /// Exit with status 2 when a quality target is missed.
    #[arg(long)]
    pub gate: bool,
}

/// Grace after an attack's end in which a finding still counts: deadline
/// detectors (silence) fire after the fact.
fn grace_ms(attack: &str, interval_secs: Option<u32>) -> i64 {
    let iv = i64::from(interval_secs.unwrap_or(3_600)) * 1000;
    match attack {
        "silent" => 4 * iv + 600_000,
        _ => (2 * iv).max(600_000),
    }
}

pub async fn run(a: EvalArgs) -> Result<()> {
    let mut json = serde_json::Map::new();
    let mut missed = false;
    if let Some(path) = &a.scenario {
        let (v, m) = run_scenario(&a, path).await?;
        if let serde_json::Value::Object(o) = v {
            json.extend(o);
        }
        missed |= m;
    }
    if let Some(dir) = &a.iot23 {
        let dir = match dir {
            Some(d) => d.clone(),
            None => super::eval_iot23::default_dir()?,
        };
        let report = super::eval_iot23::run(&dir, a.data_dir.as_deref()).await?;
        print!("{}", report.text());
        missed |= !report.all_met();
        json.insert("iot23".into(), serde_json::to_value(&report)?);
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.gate && missed {
        std::process::exit(2);
    }
    Ok(())
}

/// The configuration overrides of every eval server: ephemeral ports on
/// loopback, and no wall-clock ticks (the replayed time is the only clock,
/// so results do not depend on when or how fast it runs).
pub(crate) fn server_overrides(data_dir: &std::path::Path) -> Vec<(String, String)> {
    [
        ("SIMGUARD_DATA_DIR", data_dir.display().to_string()),
        ("SIMGUARD_HTTP__BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_RADIUS__ACCOUNTING_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_RADIUS__AUTH_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_FLOWS__IPFIX_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_FLOWS__NETFLOW_BIND", "127.0.0.1:0".into()),
        ("SIMGUARD_ENGINE__TICK_MS", "0".into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into()
}

/// Runs one scenario; returns its JSON results and whether a quality
/// target was missed.
async fn run_scenario(a: &EvalArgs, path: &std::path::Path) -> Result<(serde_json::Value, bool)> {
    let scenario =
        Scenario::load(path).with_context(|| format!("loading scenario {}", path.display()))?;
    let tmp;
    let data_dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary data directory")?;
            tmp.path().to_path_buf()
        }
    };
    let overrides = server_overrides(&data_dir);
    let cfg = Config::from_toml(TEMPLATE, "built-in default", overrides.into_iter())?;
    let secret = cfg
        .radius
        .clients
        .iter()
        .find(|c| c.address.contains(&std::net::IpAddr::from([127, 0, 0, 1])))
        .map(|c| c.secret.clone())
        .context("the configuration has no RADIUS client for 127.0.0.1")?;
    let token = "eval-admin-token".to_string();
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: Some(token.clone()),
        },
    )
    .await?;
    let base = format!("http://{}", server.http_addr);
    let api = ApiClient::new(&base, &token)?;

    let fleet = scenario.devices();
    let provisioned = fleet_inventory::provision_scenario(&api, &scenario, &fleet).await?;
    eprintln!(
        "eval: scenario {} — {} devices ({provisioned} provisioned), {:.1} simulated days",
        scenario.name,
        fleet.len(),
        scenario.duration.as_secs_f64() / 86_400.0
    );

    let started = Instant::now();
    let mut run = ScenarioRun::new(server.acct_addr, secret);
    run.ipfix_target = Some(server.ipfix_addr);
    run.rate = a.rate;
    run.labels_path = a.labels.clone();
    let report = simguard_sim::run_scenario(&scenario, run).await?;
    eprintln!(
        "eval: sent {} requests ({} answered) and {} flows in {:.1} s",
        report.sim.sent,
        report.sim.answered,
        report.sim.flows_exported,
        started.elapsed().as_secs_f64()
    );
    if report.sim.answered < report.sim.sent.saturating_sub(report.sim.retransmits) {
        eprintln!("eval: warning: not every request was answered");
    }
    drain(&api, report.sim.flows_exported).await?;

    let found = fetch_findings(&api).await?;
    server.shutdown().await;

    let truth: Vec<Truth> = report
        .labels
        .iter()
        .map(|l| {
            let iv = l.profile.map(|p| p.report_interval_secs());
            let attack = l.attack.name().to_string();
            Truth {
                grace_ms: grace_ms(&attack, iv),
                attack,
                imsi: l.imsi.clone(),
                cell: l.cell.clone(),
                start_ms: l.start_ms as i64,
                end_ms: l.end_ms as i64,
                interval_secs: iv,
                onset_ms: l.detail["onset_ms"].as_i64(),
                wind_down_ms: l.detail["gap_secs"].as_i64().map_or(0, |s| s * 1000),
            }
        })
        .collect();
    let benign: BTreeSet<String> = report.benign_imsis.iter().cloned().collect();
    let unprovisioned: BTreeSet<String> = fleet
        .iter()
        .filter(|d| !d.provisioned)
        .map(|d| d.imsi.clone())
        .collect();
    let eval = score::score(
        &found,
        &truth,
        &benign,
        &unprovisioned,
        report.warmup_end_ms as i64,
        report.benign_device_days,
    );
    print_report(&scenario, &eval);
    let json = serde_json::json!({
        "scenario": scenario.name,
        "devices": fleet.len(),
        "simulated_days": scenario.duration.as_secs_f64() / 86_400.0,
        "requests": report.sim.sent,
        "flows": report.sim.flows_exported,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "evaluation": eval,
        "missed_targets": eval.missed_targets(),
    });
    Ok((json, !eval.missed_targets().is_empty()))
}

fn print_report(s: &Scenario, e: &Evaluation) {
    println!("scenario {}\n", s.name);
    print!("{}", e.table());
    let missed = e.missed_targets();
    if missed.is_empty() {
        println!("\nall quality targets met");
    } else {
        println!("\ntargets missed:");
        for m in missed {
            println!("  - {m}");
        }
    }
    if !e.false_examples.is_empty() {
        println!("\nfalse findings (first {}):", e.false_examples.len());
        for x in &e.false_examples {
            println!("  {x}");
        }
    }
}

/// Waits until every exported flow has been applied and the findings stored
/// have stopped changing.
async fn drain(api: &ApiClient, flows: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = (u64::MAX, u64::MAX);
    let mut stable = 0;
    loop {
        let status = api.get("/api/v1/status").await?;
        let applied = status["flows"]["attributed"].as_u64().unwrap_or(0)
            + status["flows"]["unattributed"].as_u64().unwrap_or(0);
        let seq = status["engine_seq"].as_u64().unwrap_or(0);
        // The store has committed everything the engine applied, so the
        // findings list is complete up to `seq`.
        let stored = status["store_seq"].as_u64().unwrap_or(0) >= seq;
        let total = api.get("/api/v1/findings/summary").await?["total"]
            .as_u64()
            .unwrap_or(0);
        if applied >= flows && stored && (seq, total) == last {
            stable += 1;
            if stable >= 2 {
                return Ok(());
            }
        } else {
            stable = 0;
        }
        last = (seq, total);
        if Instant::now() > deadline {
            bail!("the server did not finish applying the scenario within 5 minutes ({applied} of {flows} flows applied)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) async fn fetch_findings(api: &ApiClient) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/findings?limit=1000&cursor={c}"),
            None => "/api/v1/findings?limit=1000".to_string(),
        };
        let page = api.get(&path).await?;
        for f in page["items"].as_array().into_iter().flatten() {
            out.push(Found {
                kind: f["type"].as_str().unwrap_or_default().to_string(),
                detector: f["detector"].as_str().unwrap_or_default().to_string(),
                subject_type: f["subject"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                subject: f["subject"]["id"].as_str().unwrap_or_default().to_string(),
                time_ms: f["time_ms"].as_i64().unwrap_or_default(),
                summary: f["summary"].as_str().unwrap_or_default().to_string(),
            });
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Ok(out)
}
