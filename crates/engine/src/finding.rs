//! Findings: what detection concludes about a device (or a cell, network or
//! APN), with the evidence a person needs to check it.
//!
//! Findings come out of [`crate::Engine::apply`] as [`crate::Output::Finding`].
//! They are a pure function of the journal: the id is the journal sequence
//! number of the event that produced the finding plus its index among that
//! event's findings, so a replay produces the same ids and the store can
//! ignore ones it already has.

use crate::event::FlowRecord;
use crate::ids::Digits;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What kind of deviation was found. The names (`as_str`) are the API's and
/// the evaluation's; keep them stable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FindingKind {
    /// More bytes in a period than the group's declared profile allows.
    DeclaredVolume,
    /// Reports (sessions, interims) more often than the declared interval.
    DeclaredRhythm,
    /// Traffic outside the declared active hours.
    ActiveHours,
    /// A radio access type the group does not allow.
    DisallowedRat,
    /// Serving network or country outside the allowed set.
    Roaming,
    /// Consecutive locations too far apart for the time between them.
    ImpossibleTravel,
    /// Volume far above the device's own learned baseline.
    VolumeAnomaly,
    /// Reports or sessions far more often than the device's learned rhythm.
    RhythmAnomaly,
    /// A device that behaves unlike the rest of its group (cohort).
    CohortOutlier,
    /// Traffic to a destination never seen for this device or its group.
    NewDestination,
    /// A flow outside the group's firewall policy.
    PolicyViolation,
    /// Fan-out to many addresses on telnet and other IoT ports, mostly unanswered.
    Scanning,
    /// Participation in a flood (UDP, SYN, ACK, GRE): see the evidence's vector.
    Ddos,
    /// Many DNS queries to resolvers: water torture (random subdomains of one domain).
    DnsWaterTorture,
    /// A session to a command-and-control port (telnet, IRC) held by the device.
    CommandAndControl,
    /// The IMEI (or its TAC) changed against the bound or first-seen IMEI.
    SimSwap,
    /// An IMSI that is not in the inventory is using the network.
    Unprovisioned,
    /// No report within the expected interval (with grace).
    Silent,
    /// The device reconnects far too often.
    Flapping,
    /// A cell, network or APN carrying far more devices or traffic than its baseline.
    Overload,
}

impl FindingKind {
    pub const ALL: [FindingKind; 20] = [
        FindingKind::DeclaredVolume,
        FindingKind::DeclaredRhythm,
        FindingKind::ActiveHours,
        FindingKind::DisallowedRat,
        FindingKind::Roaming,
        FindingKind::ImpossibleTravel,
        FindingKind::VolumeAnomaly,
        FindingKind::RhythmAnomaly,
        FindingKind::CohortOutlier,
        FindingKind::NewDestination,
        FindingKind::PolicyViolation,
        FindingKind::Scanning,
        FindingKind::Ddos,
        FindingKind::DnsWaterTorture,
        FindingKind::CommandAndControl,
        FindingKind::SimSwap,
        FindingKind::Unprovisioned,
        FindingKind::Silent,
        FindingKind::Flapping,
        FindingKind::Overload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::DeclaredVolume => "declared_volume",
            FindingKind::DeclaredRhythm => "declared_rhythm",
            FindingKind::ActiveHours => "active_hours",
            FindingKind::DisallowedRat => "disallowed_rat",
            FindingKind::Roaming => "roaming",
            FindingKind::ImpossibleTravel => "impossible_travel",
            FindingKind::VolumeAnomaly => "volume_anomaly",
            FindingKind::RhythmAnomaly => "rhythm_anomaly",
            FindingKind::CohortOutlier => "cohort_outlier",
            FindingKind::NewDestination => "new_destination",
            FindingKind::PolicyViolation => "policy_violation",
            FindingKind::Scanning => "scanning",
            FindingKind::Ddos => "ddos",
            FindingKind::DnsWaterTorture => "dns_water_torture",
            FindingKind::CommandAndControl => "c2_channel",
            FindingKind::SimSwap => "sim_swap",
            FindingKind::Unprovisioned => "unprovisioned",
            FindingKind::Silent => "silent",
            FindingKind::Flapping => "flapping",
            FindingKind::Overload => "overload",
        }
    }

    /// The detector that produces this kind (the unit switched per group).
    pub fn detector(self) -> Detector {
        match self {
            FindingKind::DeclaredVolume
            | FindingKind::DeclaredRhythm
            | FindingKind::ActiveHours
            | FindingKind::DisallowedRat => Detector::Declared,
            FindingKind::Roaming | FindingKind::ImpossibleTravel => Detector::Location,
            FindingKind::VolumeAnomaly | FindingKind::RhythmAnomaly => Detector::Baseline,
            FindingKind::CohortOutlier => Detector::Cohort,
            FindingKind::NewDestination => Detector::Destinations,
            FindingKind::PolicyViolation => Detector::Policy,
            FindingKind::Scanning
            | FindingKind::Ddos
            | FindingKind::DnsWaterTorture
            | FindingKind::CommandAndControl => Detector::Botnet,
            FindingKind::SimSwap | FindingKind::Unprovisioned => Detector::Identity,
            FindingKind::Silent | FindingKind::Flapping => Detector::Connectivity,
            FindingKind::Overload => Detector::Overload,
        }
    }

    /// For a finding about usage over a limit in a calendar period, the end
    /// of the period its `time` falls in (Unix ms): the condition ends there,
    /// when the counter starts again from 0. None for every other kind.
    /// `declared_volume` is the only one: the declared bytes per UTC day
    /// (the learned volume baselines judge single reports, not periods).
    pub fn usage_period_end(self, time: i64) -> Option<i64> {
        match self {
            FindingKind::DeclaredVolume => {
                Some((time.div_euclid(crate::time::DAY_MS) + 1) * crate::time::DAY_MS)
            }
            _ => None,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FindingKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("unknown finding type {s:?}"))
    }
}

/// The detectors, each switchable per group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Detector {
    Declared,
    Location,
    Baseline,
    Cohort,
    Destinations,
    Policy,
    Botnet,
    Identity,
    Connectivity,
    Overload,
}

impl Detector {
    pub const ALL: [Detector; 10] = [
        Detector::Declared,
        Detector::Location,
        Detector::Baseline,
        Detector::Cohort,
        Detector::Destinations,
        Detector::Policy,
        Detector::Botnet,
        Detector::Identity,
        Detector::Connectivity,
        Detector::Overload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Declared => "declared",
            Detector::Location => "location",
            Detector::Baseline => "baseline",
            Detector::Cohort => "cohort",
            Detector::Destinations => "destinations",
            Detector::Policy => "policy",
            Detector::Botnet => "botnet",
            Detector::Identity => "identity",
            Detector::Connectivity => "connectivity",
            Detector::Overload => "overload",
        }
    }

    /// Bit of this detector in a group's disabled-detector mask.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl FromStr for Detector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Detector::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("unknown detector {s:?}"))
    }
}

/// Severity, lowest first (so `>=` compares as people expect).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Severity {
    #[default]
    Warning,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown severity {s:?}; expected warning, minor, major or critical")
            })
    }
}

/// What a finding is about: one device, or a shared resource.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Subject {
    Device(Digits),
    /// A cell, as "MCC-MNC-TAC/LAC-CI" text.
    Cell(String),
    /// A serving network, "MCC-MNC".
    Network(String),
    Apn(String),
}

/// One fact in a finding's evidence: a name, the value seen and, when there
/// is one, the value expected. Values are text so that any person (or SIEM)
/// can read them without knowing our types.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub observed: String,
    pub expected: Option<String>,
}

/// The accounting record behind a finding, summarised.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RecordRef {
    /// Journal sequence number of the event.
    pub seq: u64,
    pub time: i64,
    /// "start", "interim", "stop", or "flows".
    pub what: String,
    pub detail: String,
}

/// Why a finding was raised, in terms a person can check.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// One line: what was observed against what was expected.
    pub summary: String,
    pub facts: Vec<Fact>,
    /// What it was held to: "declared profile of group meters",
    /// "learned baseline (14 days)", "cohort of 812 devices"...
    pub baseline: String,
    /// The records behind it (bounded: at most [`Evidence::MAX_RECORDS`]).
    pub records: Vec<RecordRef>,
    /// Sample flows behind it (bounded: at most [`Evidence::MAX_FLOWS`]).
    pub flows: Vec<FlowRecord>,
}

impl Evidence {
    pub const MAX_RECORDS: usize = 8;
    pub const MAX_FLOWS: usize = 8;
}

/// A finding.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic id: (journal seq << 8) | index within that event.
    pub id: u64,
    pub kind: FindingKind,
    pub subject: Subject,
    /// The device's tenant and group when known (for scoping and filters).
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub severity: Severity,
    /// Event time at which it was detected, Unix ms.
    pub time: i64,
    /// When the deviation began, as far as the evidence shows, Unix ms.
    pub onset: i64,
    /// Confidence in percent, 0 to 100 (an integer so that findings compare
    /// exactly across replays; the API shows it as 0.0 to 1.0).
    pub confidence: u8,
    pub evidence: Evidence,
}

impl Finding {
    /// The IMSI, for findings about a device.
    pub fn imsi(&self) -> Option<Digits> {
        match &self.subject {
            Subject::Device(d) => Some(*d),
            _ => None,
        }
    }

    pub fn make_id(seq: u64, index: usize) -> u64 {
        (seq << 8) | (index.min(255) as u64)
    }
}
