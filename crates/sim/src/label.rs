//! Ground-truth labels of a scenario run, and its report.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::attack::BenignCounts;
use crate::profile::Profile;
use crate::report::SimReport;
use crate::scenario::AttackKind;

/// One injected attack instance: one line of the labels file (JSON Lines).
///
/// `start_ms` is the simulated Unix time of the first attack traffic the server can
/// see (first flow, or first record that shows the change), `end_ms` of the last.
/// For `silent`, `start_ms` is when the first report that never came was due and
/// `end_ms` the end of the run; for `impossible-travel` both are the first record from
/// the far place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// `"mirai-scan"`, `"ddos-udp"`, ... (see [`AttackKind::name`]).
    pub attack: AttackKind,
    /// The attacked device; `None` for `cell-overload`, which names a cell.
    pub imsi: Option<String>,
    /// The device's index in the scenario's fleet.
    pub device: Option<u32>,
    pub profile: Option<Profile>,
    /// The device's group id in the inventory (see [`crate::placement`]).
    pub group: Option<String>,
    pub start_ms: u64,
    pub end_ms: u64,
    /// `cell-overload`: the cell, "MCC-MNC-TAC-ECI" in decimal.
    pub cell: Option<String>,
    /// Attack-specific facts: target, rate, counts, old and new values...
    pub detail: serde_json::Value,
}

impl Label {
    /// Reads a labels file.
    pub fn read_jsonl(path: impl AsRef<Path>) -> std::io::Result<Vec<Label>> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }

    /// Writes labels as JSON Lines.
    pub fn write_jsonl(labels: &[Label], path: impl AsRef<Path>) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        for l in labels {
            serde_json::to_writer(&mut w, l).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }
}

/// What a scenario run did, with what an evaluation needs besides the findings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub scenario: String,
    /// The simulator's own report (requests, answers, flows).
    pub sim: SimReport,
    pub labels: Vec<Label>,
    /// Provisioned devices of the regular fleet that no attack touched: any finding
    /// about one of them after the warm-up is a false one.
    pub benign_imsis: Vec<String>,
    /// Simulated start and end, and the end of the warm-up (Unix ms).
    pub start_ms: u64,
    pub warmup_end_ms: u64,
    pub end_ms: u64,
    /// Benign devices times the days after the warm-up: the denominator of false
    /// findings per 10,000 benign device-days.
    pub benign_device_days: f64,
    /// All devices (fleet and extras) times the whole simulated time.
    pub device_days: f64,
    pub benign: BenignCounts,
}
