//! Fleet simulator: realistic IoT device profiles speaking real RADIUS accounting
//! (RFC 2866 with the 3GPP TS 29.061 attributes) to a server over UDP, deterministic
//! for a seed.
//!
//! Two modes:
//! - [`Mode::Fleet`]: a discrete-event simulation of a fleet of devices (smart meters,
//!   pallet trackers, patient monitors, vending machines, cameras) whose simulated time
//!   can run faster than the wall clock (`speed`).
//! - [`Mode::Load`]: back-to-back Interim-Updates at a constant rate, for throughput
//!   and latency measurements.
//!
//! With `ipfix_target` set, fleet mode also exports IPFIX (RFC 7011) for the traffic
//! behind the accounting: flows from and to each session's Framed-IP-Address whose
//! bytes and packets add up exactly to the counters, with destinations per profile
//! (see the crate README).
//!
//! ```no_run
//! # async fn demo() -> Result<(), simguard_sim::SimError> {
//! let mut cfg = simguard_sim::SimConfig::new("127.0.0.1:1813".parse().unwrap(), "secret");
//! cfg.devices = 500;
//! cfg.speed = 600.0;
//! cfg.sim_duration = Some(std::time::Duration::from_secs(86_400));
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let report = simguard_sim::run(cfg, shutdown).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod attack;
mod device;
mod engine;
mod fleet;
mod flows;
mod geo;
pub mod ipfix;
mod lab;
mod label;
mod pool;
mod profile;
mod report;
pub mod scenario;
mod source;
mod truth;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use engine::run;
pub use fleet::{fleet, luhn_check_digit, luhn_valid, SimDevice};
pub use profile::{ParseProfileError, Profile, ProfileMix};
pub use report::{SimReport, StatusCounts};
pub use truth::{FlowTruth, GroundTruth, TruthLine};

pub use attack::{mirai_excluded, BenignCounts};
pub use flows::FIRMWARE_SERVER;
pub use geo::{cell_plan, PlannedCell, ALLOWED_COUNTRIES, PLANNED_RANGE_M};
pub use lab::{generate_scenario, run_scenario, ScenarioOutput, ScenarioRun};
pub use label::{Label, ScenarioReport};
pub use scenario::{
    placement, AttackKind, AttackSpec, Placement, Scenario, ScenarioError, Span, UnixTime,
};

/// What the simulator sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// The fleet lives its life in simulated time: Starts, Interim-Updates and Stops
    /// when each device's profile says so.
    Fleet,
    /// Interim-Updates for every device round-robin at `rate` requests/s for `duration`
    /// of wall time, counters growing; for throughput and latency measurements.
    Load { rate: u32, duration: Duration },
}

/// Simulator settings. Start from [`SimConfig::new`] and change fields.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The RADIUS accounting server.
    pub target: SocketAddr,
    /// Shared secret with the server.
    pub secret: String,
    pub seed: u64,
    pub devices: u32,
    pub mix: ProfileMix,
    /// Share of devices marked `provisioned: false` in [`fleet`] (they still send).
    pub unprovisioned_share: f64,
    /// Simulated seconds per wall second; `f64::INFINITY` runs as fast as `rate` allows.
    pub speed: f64,
    /// Simulated time at the start, Unix seconds; 0 means "now".
    pub start_unix: u64,
    /// Most new requests per second to send (retransmissions come on top); 0 for no
    /// limit. In load mode the rate of [`Mode::Load`] is used instead.
    pub rate: u32,
    /// Stop after this much wall time.
    pub duration: Option<Duration>,
    /// Fleet mode: stop once every event before start + this much simulated time is sent.
    pub sim_duration: Option<Duration>,
    /// UDP sockets (source ports); each carries up to 256 outstanding requests.
    pub sockets: usize,
    /// Wait for the first answer; doubled for each retransmission.
    pub timeout: Duration,
    /// Retransmissions before giving up on a request.
    pub retries: u32,
    /// Add a Message-Authenticator (RFC 3579) to every request.
    pub message_authenticator: bool,
    pub nas_ip: Ipv4Addr,
    pub nas_identifier: String,
    /// Source address. A loopback address with a non-loopback target binds the wildcard
    /// address instead, since a loopback source cannot reach another host.
    pub bind_ip: IpAddr,
    pub mode: Mode,
    /// Write one JSON line per request ([`GroundTruth`]) to this file, and one per
    /// exported flow ([`FlowTruth`]) when `ipfix_target` is set; see [`TruthLine`].
    pub record_to: Option<PathBuf>,
    /// Fleet mode: export IPFIX for the devices' traffic to this collector, from a UDP
    /// socket of its own on `bind_ip`. Each Interim-Update and Stop comes with the
    /// flows that make up the usage it adds (as an exporter with an active timeout of
    /// one report interval would send them).
    pub ipfix_target: Option<SocketAddr>,
    /// Observation Domain ID of the IPFIX messages.
    pub ipfix_observation_domain: u32,
    /// Most IPFIX flow records per wall second (0: no limit).
    pub ipfix_rate: u32,
    /// Access point name sent as Called-Station-Id.
    pub apn: String,
    /// UE address pool for Framed-IP-Address.
    pub ip_pool_base: Ipv4Addr,
    pub ip_pool_prefix: u8,
}

impl SimConfig {
    pub fn new(target: SocketAddr, secret: impl Into<String>) -> Self {
        SimConfig {
            target,
            secret: secret.into(),
            seed: 1,
            devices: 1_000,
            mix: ProfileMix::default(),
            unprovisioned_share: 0.0,
            speed: 1.0,
            start_unix: 0,
            rate: 20_000,
            duration: None,
            sim_duration: None,
            sockets: 16,
            timeout: Duration::from_secs(1),
            retries: 3,
            message_authenticator: true,
            nas_ip: Ipv4Addr::LOCALHOST,
            nas_identifier: "pgw-sim-1".to_string(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mode: Mode::Fleet,
            record_to: None,
            ipfix_target: None,
            ipfix_observation_domain: 1,
            ipfix_rate: 0,
            apn: "iot.simguard".to_string(),
            ip_pool_base: Ipv4Addr::new(10, 45, 0, 0),
            ip_pool_prefix: 16,
        }
    }

    /// `start_unix`, with 0 resolved to the current time.
    pub fn resolved_start_unix(&self) -> u64 {
        if self.start_unix != 0 {
            return self.start_unix;
        }
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        if self.speed.is_nan() || self.speed <= 0.0 {
            return bad("speed must be positive");
        }
        if self.sockets == 0 || self.sockets > 1024 {
            return bad("sockets must be between 1 and 1024");
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return bad("timeout must be between 1 ms and 60 s");
        }
        if self.retries > 10 {
            return bad("retries must be at most 10");
        }
        if self.secret.is_empty() {
            return bad("the shared secret must not be empty");
        }
        if !(8..=30).contains(&self.ip_pool_prefix) {
            return bad("ip pool prefix must be between /8 and /30");
        }
        if let Mode::Load { duration, .. } = &self.mode {
            if duration.is_zero() {
                return bad("load duration must be positive");
            }
            if self.ipfix_target.is_some() {
                return bad("IPFIX export needs fleet mode");
            }
        }
        Ok(())
    }
}

/// Why a run could not start or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot open a UDP socket from {bind} to {target}: {source}")]
    Socket {
        bind: IpAddr,
        target: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write ground truth to {path}: {source}")]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode an accounting request: {0}")]
    Encode(#[from] simguard_radius::EncodeError),
}

/// The first `count` Accounting-Requests the configured run would send, in order, with
/// Identifier `i % 256`, without touching the network. Fleet mode fires events in
/// simulated-time order regardless of `speed`; load mode stamps them all with the start
/// time. For inspection, dumps and determinism checks.
///
/// With `ipfix_target` set the flows behind the requests are generated alongside, as in
/// a run; they never change a request.
pub fn generate_requests(cfg: &SimConfig, count: usize) -> Result<Vec<Vec<u8>>, SimError> {
    Ok(generate(cfg, count, cfg.ipfix_target.is_some())?.0)
}

/// The IPFIX messages a fleet-mode run with `ipfix_target` set would send alongside its
/// first `count` Accounting-Requests (whether or not `ipfix_target` is set here), in
/// order, without touching the network. A run that reaches the end of `sim_duration`
/// sends exactly these.
pub fn generate_ipfix(cfg: &SimConfig, count: usize) -> Result<Vec<Vec<u8>>, SimError> {
    if matches!(cfg.mode, Mode::Load { .. }) {
        return Err(SimError::Config("IPFIX export needs fleet mode".into()));
    }
    Ok(generate(cfg, count, true)?.1)
}

type Generated = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn generate(cfg: &SimConfig, count: usize, with_flows: bool) -> Result<Generated, SimError> {
    cfg.validate()?;
    let start_ms = cfg.resolved_start_unix().saturating_mul(1_000);
    let mut gen = source::Generator::new(cfg, start_ms);
    let ctx = engine::encode_ctx(cfg);
    let mut exporter = with_flows.then(|| {
        flows::FlowExporter::new(cfg.seed, gen.devices.len(), cfg.ipfix_observation_domain)
    });
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for i in 0..count {
        if matches!(gen.peek(u64::MAX), source::Next::Done) {
            break;
        }
        let Some((d, rec)) = gen.pop(start_ms) else {
            break;
        };
        let mut buf = Vec::with_capacity(512);
        device::encode(&gen.devices[d], &rec, &ctx, i as u8, &mut buf)?;
        out.push(buf);
        if let Some(x) = exporter.as_mut() {
            x.on_record(&gen.devices[d], &rec);
            x.after_record(gen.next_time());
        }
    }
    let ipfix = match exporter {
        Some(mut x) => {
            x.flush();
            x.out.into_iter().map(|(m, _)| m).collect()
        }
        None => Vec::new(),
    };
    Ok((out, ipfix))
}
