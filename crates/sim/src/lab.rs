//! Running a scenario: over the wire against a server ([`run_scenario`]), or offline
//! into bytes for inspection and tests ([`generate_scenario`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::device::encode;
use crate::engine::{encode_ctx, run_with};
use crate::flows::FlowExporter;
use crate::label::{Label, ScenarioReport};
use crate::report::SimReport;
use crate::scenario::Scenario;
use crate::source::{Generator, Next};
use crate::truth::{FlowTruth, GroundTruth};
use crate::{Mode, SimConfig, SimError};

/// How to run a scenario against a server. Start from [`ScenarioRun::new`].
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    /// The RADIUS accounting server.
    pub radius_target: SocketAddr,
    pub secret: String,
    /// The IPFIX collector; without it only accounting is sent (flood attacks then
    /// show only in the counters).
    pub ipfix_target: Option<SocketAddr>,
    /// Write the labels here (JSON Lines), one per attack instance.
    pub labels_path: Option<PathBuf>,
    /// Write the per-request and per-flow ground truth here (see [`crate::TruthLine`]).
    pub record_to: Option<PathBuf>,
    /// Simulated seconds per wall second; infinite (the default) sends as fast as the
    /// server answers.
    pub speed: f64,
    /// Most new accounting requests per wall second; 0 (the default) for no limit
    /// other than the requests in flight (256 per socket).
    pub rate: u32,
    /// Most IPFIX flow records per wall second (0: no limit). The default keeps
    /// floods from overrunning a collector's socket buffer.
    pub flow_rate: u32,
    pub sockets: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub bind_ip: IpAddr,
    pub nas_ip: Ipv4Addr,
    pub ipfix_observation_domain: u32,
    /// Turn true to stop early (labels then cover what was sent).
    pub shutdown: Option<watch::Receiver<bool>>,
}

impl ScenarioRun {
    pub fn new(radius_target: SocketAddr, secret: impl Into<String>) -> ScenarioRun {
        ScenarioRun {
            radius_target,
            secret: secret.into(),
            ipfix_target: None,
            labels_path: None,
            record_to: None,
            speed: f64::INFINITY,
            rate: 0,
            flow_rate: 100_000,
            sockets: 8,
            timeout: Duration::from_secs(1),
            retries: 3,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            nas_ip: Ipv4Addr::LOCALHOST,
            ipfix_observation_domain: 1,
            shutdown: None,
        }
    }

    /// The simulator configuration that runs `s` this way.
    pub fn sim_config(&self, s: &Scenario) -> SimConfig {
        let mut c = SimConfig::new(self.radius_target, self.secret.clone());
        c.seed = s.seed;
        c.devices = s.fleet.devices;
        c.mix = s.mix();
        c.unprovisioned_share = s.fleet.unprovisioned_share;
        c.speed = self.speed;
        c.start_unix = s.start.0;
        c.rate = self.rate;
        c.sim_duration = Some(Duration::from_millis(s.duration.as_ms()));
        c.sockets = self.sockets;
        c.timeout = self.timeout;
        c.retries = self.retries;
        c.bind_ip = self.bind_ip;
        c.nas_ip = self.nas_ip;
        c.mode = Mode::Fleet;
        c.record_to = self.record_to.clone();
        c.ipfix_target = self.ipfix_target;
        c.ipfix_observation_domain = self.ipfix_observation_domain;
        c.ipfix_rate = self.flow_rate;
        c
    }
}

/// Runs the scenario over the wire: RADIUS accounting to `radius_target` (request and
/// answer, retransmitted as a NAS would) and, with `ipfix_target`, IPFIX for all the
/// traffic, attacks included. Writes the labels when asked and returns them with what
/// an evaluation needs (benign devices, device-days).
pub async fn run_scenario(s: &Scenario, run: ScenarioRun) -> Result<ScenarioReport, SimError> {
    s.validate().map_err(|e| SimError::Config(e.to_string()))?;
    let cfg = run.sim_config(s);
    // Without a shutdown receiver, one that never turns true (its sender lives
    // until the run is over).
    let (_never, idle) = watch::channel(false);
    let shutdown = run.shutdown.clone().unwrap_or(idle);
    let (sim, gen) = run_with(cfg, Some(s), shutdown).await?;
    let report = report_of(s, sim, &gen);
    if let Some(path) = &run.labels_path {
        Label::write_jsonl(&report.labels, path).map_err(|source| SimError::Record {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report)
}

fn report_of(s: &Scenario, sim: SimReport, gen: &Generator) -> ScenarioReport {
    let labels = gen
        .overlay
        .as_ref()
        .map(|o| o.labels(&gen.devices))
        .unwrap_or_default();
    let benign_imsis: Vec<String> = s
        .base_fleet()
        .into_iter()
        .filter(|d| d.provisioned)
        .filter(|d| !gen.overlay.as_ref().is_some_and(|o| o.is_attacked(d.index)))
        .map(|d| d.imsi)
        .collect();
    let day = 86_400_000.0;
    let warmup_end_ms = s.start_ms() + s.warmup.as_ms();
    let end_ms = s.end_ms();
    ScenarioReport {
        scenario: s.name.clone(),
        sim,
        labels,
        benign_device_days: benign_imsis.len() as f64 * (end_ms - warmup_end_ms) as f64 / day,
        benign_imsis,
        start_ms: s.start_ms(),
        warmup_end_ms,
        end_ms,
        device_days: gen.devices.len() as f64 * s.duration.as_ms() as f64 / day,
        benign: gen
            .overlay
            .as_ref()
            .map(|o| o.benign_counts(&gen.devices))
            .unwrap_or_default(),
    }
}

/// Everything a scenario sends, generated without a network.
#[derive(Clone, Debug)]
pub struct ScenarioOutput {
    /// Accounting-Requests in send order (Identifier = index mod 256).
    pub requests: Vec<Vec<u8>>,
    /// What each request says, in the same order (`answered` is false).
    pub records: Vec<GroundTruth>,
    /// IPFIX messages in send order.
    pub ipfix: Vec<Vec<u8>>,
    /// Every exported flow with its device, in export order.
    pub flows: Vec<FlowTruth>,
    pub labels: Vec<Label>,
    /// The report a run to the end would give, with zero network counts.
    pub report: ScenarioReport,
}

/// Generates the whole scenario offline with `secret`: the very requests and IPFIX
/// messages a [`run_scenario`] to the end sends (the same for the same scenario, byte
/// for byte), the flows, and the labels.
pub fn generate_scenario(s: &Scenario, secret: &str) -> Result<ScenarioOutput, SimError> {
    s.validate().map_err(|e| SimError::Config(e.to_string()))?;
    let unused = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let mut run = ScenarioRun::new(unused, secret);
    run.ipfix_target = Some(unused);
    let cfg = run.sim_config(s);
    let mut gen = Generator::with_scenario(&cfg, s.start_ms(), s)?;
    let ctx = encode_ctx(&cfg);
    let mut x = FlowExporter::new(cfg.seed, gen.devices.len(), cfg.ipfix_observation_domain);
    let mut out = ScenarioOutput {
        requests: Vec::new(),
        records: Vec::new(),
        ipfix: Vec::new(),
        flows: Vec::new(),
        labels: Vec::new(),
        report: report_of(s, SimReport::default(), &gen),
    };
    let drain = |gen: &mut Generator, x: &mut FlowExporter, flows: &mut Vec<FlowTruth>| {
        if let Some(o) = gen.overlay.as_mut() {
            for f in o.out.drain(..) {
                x.push(f.export_secs, f.record);
                if let Some(dev) = gen.devices.get(f.device as usize) {
                    flows.push(FlowTruth::from_overlay(dev, &f));
                }
            }
        }
    };
    let mut i = 0usize;
    loop {
        let next = gen.peek(u64::MAX);
        drain(&mut gen, &mut x, &mut out.flows);
        if matches!(next, Next::Done) {
            break;
        }
        let Some((d, rec)) = gen.pop(u64::MAX) else {
            break;
        };
        let dev = &gen.devices[d];
        let mut buf = Vec::with_capacity(512);
        encode(dev, &rec, &ctx, i as u8, &mut buf)?;
        out.requests.push(buf);
        out.records.push(GroundTruth::new(dev, &rec));
        for f in x.on_record(dev, &rec) {
            out.flows.push(FlowTruth::new(dev, &rec, f));
        }
        drain(&mut gen, &mut x, &mut out.flows);
        x.after_record(gen.next_time());
        i += 1;
    }
    x.flush();
    out.ipfix = x.out.drain(..).map(|(m, _)| m).collect();
    out.report = report_of(s, SimReport::default(), &gen);
    out.labels = out.report.labels.clone();
    Ok(out)
}
