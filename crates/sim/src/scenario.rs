//! Attack-lab scenarios: a fleet, a stretch of simulated time, benign variety and a
//! schedule of attacks, read from TOML (`scenarios/*.toml` at the repository root).
//!
//! ```toml
//! name = "small"
//! seed = 7
//! start = "2025-03-28T00:00:00Z"   # or Unix seconds
//! duration = "3d"                  # "90s", "5m", "2h", "3d", "1d 6h", or seconds
//! warmup = "2d"                    # no attack starts before this offset
//!
//! [fleet]
//! devices = 300
//! mix = { smart-meter = 40, pallet-tracker = 25, camera = 10 }
//!
//! [benign]
//! local_time_schedules = true      # daylight saving moves per-report schedules
//! interim_jitter_secs = 3
//! [[benign.firmware_update]]
//! profile = "pallet-tracker"
//! at = "2d 1h"
//! window = "3h"
//! bytes = 3_000_000
//!
//! [[attack]]
//! kind = "mirai-scan"
//! profile = "camera"
//! at = "2d 3h"
//! duration = "5m"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fleet::{fleet, SimDevice};
use crate::profile::{Profile, ProfileMix};

/// Why a scenario could not be loaded. Every message names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML did not parse or a value has the wrong type; the message shows the
    /// offending line (and with it the key).
    #[error("scenario {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("scenario {origin}: field `{field}`: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
}

impl ScenarioError {
    /// The field a validation error is about, if it is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A span of simulated time with millisecond resolution. In TOML: a number of seconds,
/// or text of number-unit pairs (`ms`, `s`, `m`, `h`, `d`), e.g. `"1d 6h"`, `"90s"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub u64);

impl Span {
    pub const ZERO: Span = Span(0);

    pub fn from_secs(s: u64) -> Span {
        Span(s.saturating_mul(1_000))
    }

    pub fn as_ms(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        let bad = || {
            format!("invalid duration {text:?} (expected e.g. \"90s\", \"5m\", \"2h\", \"3d\" or \"1d 6h\")")
        };
        let mut total: u64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '_')
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].replace('_', "").parse().map_err(|_| bad())?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" | "" => 1_000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            total = n
                .checked_mul(unit)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            rest = rest[unit_len..].trim_start();
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut first = true;
        for (unit, name) in [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
            (1, "ms"),
        ] {
            if ms >= unit {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{}{name}", ms / unit)?;
                ms %= unit;
                first = false;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds, or text such as \"90s\", \"5m\", \"1d 6h\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(Span::from_secs)
                    .map_err(|_| E::custom(format!("negative duration {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A point in simulated time, Unix seconds. In TOML: a number, or UTC text
/// `"YYYY-MM-DDTHH:MM:SSZ"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl std::str::FromStr for UnixTime {
    type Err = String;

    fn from_str(text: &str) -> Result<UnixTime, String> {
        let bad = || {
            format!(
                "invalid time {text:?} (expected \"YYYY-MM-DDTHH:MM:SSZ\" in UTC, or Unix seconds)"
            )
        };
        let t = text.trim();
        let b = t.as_bytes();
        if b.len() != 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b' ')
            || b[13] != b':'
            || b[16] != b':'
            || !(b[19] == b'Z' || b[19] == b'z')
        {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
            t.get(r).and_then(|x| x.parse().ok()).ok_or_else(bad)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1970..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || !(1..=31).contains(&d)
            || h > 23
            || mi > 59
            || s > 60
        {
            return Err(bad());
        }
        let days = crate::geo::days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86_400 + h * 3_600 + mi * 60 + s;
        u64::try_from(secs).map(UnixTime).map_err(|_| bad())
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 as i64;
        let (y, m, d) = crate::geo::civil_from_days(secs.div_euclid(86_400));
        let r = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            r / 3_600,
            r / 60 % 60,
            r % 60
        )
    }
}

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnixTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UTC time \"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UnixTime, E> {
                Ok(UnixTime(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UnixTime, E> {
                u64::try_from(v)
                    .map(UnixTime)
                    .map_err(|_| E::custom(format!("time {v} before 1970")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UnixTime, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The attacks the lab can inject; the names are the labels' `attack` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttackKind {
    #[serde(rename = "mirai-scan")]
    MiraiScan,
    #[serde(rename = "ddos-udp")]
    DdosUdp,
    #[serde(rename = "ddos-syn")]
    DdosSyn,
    #[serde(rename = "ddos-ack")]
    DdosAck,
    #[serde(rename = "ddos-gre")]
    DdosGre,
    #[serde(rename = "dns-water-torture")]
    DnsWaterTorture,
    #[serde(rename = "volume-spike-x10")]
    VolumeSpikeX10,
    #[serde(rename = "volume-spike-x100")]
    VolumeSpikeX100,
    #[serde(rename = "rhythm-change")]
    RhythmChange,
    #[serde(rename = "exfiltration")]
    Exfiltration,
    #[serde(rename = "sim-swap-phone")]
    SimSwapPhone,
    #[serde(rename = "roaming-disallowed")]
    RoamingDisallowed,
    #[serde(rename = "impossible-travel")]
    ImpossibleTravel,
    #[serde(rename = "silent")]
    Silent,
    #[serde(rename = "flapping")]
    Flapping,
    #[serde(rename = "cell-overload")]
    CellOverload,
}

impl AttackKind {
    pub const ALL: [AttackKind; 16] = [
        AttackKind::MiraiScan,
        AttackKind::DdosUdp,
        AttackKind::DdosSyn,
        AttackKind::DdosAck,
        AttackKind::DdosGre,
        AttackKind::DnsWaterTorture,
        AttackKind::VolumeSpikeX10,
        AttackKind::VolumeSpikeX100,
        AttackKind::RhythmChange,
        AttackKind::Exfiltration,
        AttackKind::SimSwapPhone,
        AttackKind::RoamingDisallowed,
        AttackKind::ImpossibleTravel,
        AttackKind::Silent,
        AttackKind::Flapping,
        AttackKind::CellOverload,
    ];

    /// The label name, e.g. `"mirai-scan"`.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::MiraiScan => "mirai-scan",
            AttackKind::DdosUdp => "ddos-udp",
            AttackKind::DdosSyn => "ddos-syn",
            AttackKind::DdosAck => "ddos-ack",
            AttackKind::DdosGre => "ddos-gre",
            AttackKind::DnsWaterTorture => "dns-water-torture",
            AttackKind::VolumeSpikeX10 => "volume-spike-x10",
            AttackKind::VolumeSpikeX100 => "volume-spike-x100",
            AttackKind::RhythmChange => "rhythm-change",
            AttackKind::Exfiltration => "exfiltration",
            AttackKind::SimSwapPhone => "sim-swap-phone",
            AttackKind::RoamingDisallowed => "roaming-disallowed",
            AttackKind::ImpossibleTravel => "impossible-travel",
            AttackKind::Silent => "silent",
            AttackKind::Flapping => "flapping",
            AttackKind::CellOverload => "cell-overload",
        }
    }

    /// Attacks that are a stream of flows the simulator exports second by second.
    pub fn is_flood(self) -> bool {
        matches!(
            self,
            AttackKind::MiraiScan
                | AttackKind::DdosUdp
                | AttackKind::DdosSyn
                | AttackKind::DdosAck
                | AttackKind::DdosGre
                | AttackKind::DnsWaterTorture
                | AttackKind::Exfiltration
        )
    }

    /// The rate used when the scenario gives none: probes, packets or queries per
    /// second, or for exfiltration bytes per second.
    pub fn default_rate(self) -> u64 {
        match self {
            AttackKind::MiraiScan => 160,
            AttackKind::DdosUdp => 1_000,
            AttackKind::DdosSyn => 1_500,
            AttackKind::DdosAck => 1_000,
            AttackKind::DdosGre => 1_000,
            AttackKind::DnsWaterTorture => 200,
            AttackKind::Exfiltration => 250_000,
            _ => 0,
        }
    }

    /// The profile used when the scenario names none.
    pub fn default_profile(self) -> Profile {
        match self {
            AttackKind::MiraiScan
            | AttackKind::DdosUdp
            | AttackKind::DdosSyn
            | AttackKind::DdosAck
            | AttackKind::DdosGre => Profile::Camera,
            AttackKind::DnsWaterTorture | AttackKind::Exfiltration => Profile::PatientMonitor,
            AttackKind::VolumeSpikeX10 | AttackKind::VolumeSpikeX100 => Profile::PatientMonitor,
            AttackKind::RhythmChange => Profile::SmartMeter,
            AttackKind::SimSwapPhone => Profile::SmartMeter,
            AttackKind::RoamingDisallowed | AttackKind::ImpossibleTravel => Profile::PalletTracker,
            AttackKind::Silent | AttackKind::Flapping => Profile::PatientMonitor,
            AttackKind::CellOverload => Profile::SmartMeter,
        }
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fleet of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    pub devices: u32,
    /// Profile name to weight, e.g. `{ smart-meter = 50, camera = 5 }`; default: the
    /// simulator's default mix.
    #[serde(default)]
    pub mix: BTreeMap<String, u32>,
    /// Share of devices left out of the inventory (they show up as unprovisioned).
    #[serde(default)]
    pub unprovisioned_share: f64,
}

/// A firmware rollout: every device of a profile downloads `bytes` from the vendor's
/// update server at a random time within `[at, at + window)`, carried by its first
/// report after that time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareUpdate {
    pub profile: Profile,
    pub at: Span,
    pub window: Span,
    pub bytes: u64,
    /// Share of the profile's devices that take part (default all).
    #[serde(default = "one")]
    pub share: f64,
}

fn one() -> f64 {
    1.0
}

/// Benign variety that detection must not flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benign {
    /// Per-report devices (meters, vending machines) keep their local time of day, so
    /// a daylight-saving change moves their reports by an hour in UTC.
    #[serde(default)]
    pub local_time_schedules: bool,
    /// Interim-Updates of always-on devices come up to this many seconds early or late.
    #[serde(default)]
    pub interim_jitter_secs: u32,
    #[serde(default)]
    pub firmware_update: Vec<FirmwareUpdate>,
}

/// One line of the attack schedule: `count` instances of `kind`, each on its own
/// device of `profile`, the i-th starting at `at + i * every` and lasting `duration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackSpec {
    pub kind: AttackKind,
    /// Which devices to pick from (default: [`AttackKind::default_profile`]).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Offset from the scenario's start.
    pub at: Span,
    pub duration: Span,
    #[serde(default = "one_u32")]
    pub count: u32,
    /// Between the onsets of consecutive instances.
    #[serde(default)]
    pub every: Span,
    /// Probes, packets or queries per second (exfiltration: bytes per second).
    #[serde(default)]
    pub rate: Option<u64>,
    /// cell-overload: how many extra devices attach to the cell.
    #[serde(default)]
    pub devices: Option<u32>,
}

fn one_u32() -> u32 {
    1
}

impl AttackSpec {
    pub fn profile(&self) -> Profile {
        self.profile.unwrap_or(self.kind.default_profile())
    }

    pub fn rate(&self) -> u64 {
        self.rate.unwrap_or(self.kind.default_rate())
    }
}

/// A scenario: load it with [`Scenario::load`] or [`Scenario::from_toml`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    /// Simulated start.
    pub start: UnixTime,
    /// Total simulated time.
    pub duration: Span,
    /// No attack starts before this offset: detectors learn baselines meanwhile.
    pub warmup: Span,
    pub fleet: FleetSpec,
    #[serde(default)]
    pub benign: Benign,
    #[serde(default, rename = "attack")]
    pub attacks: Vec<AttackSpec>,
}

/// Most devices a scenario may have (fleet plus cell-overload extras).
const MAX_DEVICES: u64 = 2_000_000;

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and validates scenario TOML.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "<toml>")
    }

    fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        s.validate_as(origin)?;
        Ok(s)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_as(&self.name)
    }

    fn validate_as(&self, origin: &str) -> Result<(), ScenarioError> {
        let bad = |field: String, message: String| ScenarioError::Invalid {
            origin: origin.to_string(),
            field,
            message,
        };
        if self.duration.as_ms() < 60_000 {
            return Err(bad("duration".into(), "must be at least 1m".into()));
        }
        if self.warmup >= self.duration {
            return Err(bad(
                "warmup".into(),
                format!(
                    "{} leaves no time after it (duration {})",
                    self.warmup, self.duration
                ),
            ));
        }
        if self.fleet.devices == 0 {
            return Err(bad("fleet.devices".into(), "must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.fleet.unprovisioned_share) {
            return Err(bad(
                "fleet.unprovisioned_share".into(),
                "must be between 0 and 1".into(),
            ));
        }
        for name in self.fleet.mix.keys() {
            if let Err(e) = name.parse::<Profile>() {
                return Err(bad(format!("fleet.mix.{name}"), e.to_string()));
            }
        }
        if !self.fleet.mix.is_empty() && self.fleet.mix.values().all(|w| *w == 0) {
            return Err(bad("fleet.mix".into(), "needs a positive weight".into()));
        }
        let counts = self.mix().counts(self.fleet.devices);
        for (i, f) in self.benign.firmware_update.iter().enumerate() {
            let field = |x: &str| format!("benign.firmware_update[{i}].{x}");
            if f.at >= self.duration {
                return Err(bad(field("at"), "is after the end of the scenario".into()));
            }
            if f.window.as_ms() == 0 {
                return Err(bad(field("window"), "must be positive".into()));
            }
            if f.bytes == 0 || f.bytes > 10_000_000_000 {
                return Err(bad(field("bytes"), "must be between 1 and 10 GB".into()));
            }
            if !(0.0..=1.0).contains(&f.share) {
                return Err(bad(field("share"), "must be between 0 and 1".into()));
            }
        }
        let mut extra: u64 = 0;
        for (i, a) in self.attacks.iter().enumerate() {
            let field = |x: &str| format!("attack[{i}].{x}");
            if a.count == 0 {
                return Err(bad(field("count"), "must be at least 1".into()));
            }
            if a.at < self.warmup {
                return Err(bad(
                    field("at"),
                    format!(
                        "{} is before the end of the warm-up ({})",
                        a.at, self.warmup
                    ),
                ));
            }
            let last =
                a.at.as_ms()
                    .saturating_add(a.every.as_ms().saturating_mul(u64::from(a.count - 1)));
            if last >= self.duration.as_ms() {
                return Err(bad(
                    field("at"),
                    format!(
                        "the last instance starts at {} which is not before the end ({})",
                        Span(last),
                        self.duration
                    ),
                ));
            }
            if a.duration.as_ms() < 1_000 && a.kind != AttackKind::ImpossibleTravel {
                return Err(bad(field("duration"), "must be at least 1s".into()));
            }
            if a.rate.is_some() && !a.kind.is_flood() {
                return Err(bad(field("rate"), format!("{} takes no rate", a.kind)));
            }
            if a.rate == Some(0) || a.rate.is_some_and(|r| r > 1_000_000_000) {
                return Err(bad(field("rate"), "must be between 1 and 10^9".into()));
            }
            if a.kind == AttackKind::MiraiScan || a.kind == AttackKind::DnsWaterTorture {
                if a.rate().gt(&100_000) {
                    return Err(bad(field("rate"), "at most 100000 per second".into()));
                }
            } else if a.kind.is_flood()
                && a.kind != AttackKind::Exfiltration
                && a.rate() > 1_000_000
            {
                return Err(bad(
                    field("rate"),
                    "at most 1000000 packets per second".into(),
                ));
            }
            match (a.kind, a.devices) {
                (AttackKind::CellOverload, Some(0)) => {
                    return Err(bad(field("devices"), "must be at least 1".into()));
                }
                (AttackKind::CellOverload, d) => {
                    extra += u64::from(d.unwrap_or(DEFAULT_OVERLOAD_DEVICES)) * u64::from(a.count);
                }
                (_, Some(_)) => {
                    return Err(bad(
                        field("devices"),
                        "only cell-overload takes a number of devices".into(),
                    ));
                }
                (_, None) => {}
            }
            if a.kind == AttackKind::ImpossibleTravel && !a.profile().always_on() {
                return Err(bad(
                    field("profile"),
                    "impossible-travel needs an always-on profile (pallet-tracker, patient-monitor, camera)".into(),
                ));
            }
        }
        if u64::from(self.fleet.devices) + extra > MAX_DEVICES {
            return Err(bad(
                "fleet.devices".into(),
                format!("fleet plus cell-overload devices exceed {MAX_DEVICES}"),
            ));
        }
        // Each attacked device carries one attack, so that its label says all it did.
        let share = 1.0 - self.fleet.unprovisioned_share;
        let mut used: BTreeMap<Profile, u64> = BTreeMap::new();
        for (i, a) in self.attacks.iter().enumerate() {
            if a.kind == AttackKind::CellOverload {
                continue;
            }
            let p = a.profile();
            let n = used.entry(p).or_default();
            *n += u64::from(a.count);
            let have = (f64::from(counts[p.index()]) * share).floor() as u64;
            if *n > have {
                return Err(bad(
                    format!("attack[{i}].profile"),
                    format!("the attacks up to this one need {n} provisioned {p} devices but the fleet has about {have}"),
                ));
            }
        }
        Ok(())
    }

    /// The profile mix.
    pub fn mix(&self) -> ProfileMix {
        let pairs: Vec<(Profile, u32)> = self
            .fleet
            .mix
            .iter()
            .filter_map(|(n, w)| n.parse::<Profile>().ok().map(|p| (p, *w)))
            .collect();
        ProfileMix::new(&pairs).unwrap_or_default()
    }

    pub fn start_ms(&self) -> u64 {
        self.start.0.saturating_mul(1_000)
    }

    pub fn end_ms(&self) -> u64 {
        self.start_ms().saturating_add(self.duration.as_ms())
    }

    /// The fleet's regular devices: the same as [`crate::fleet`] for the seed, size,
    /// mix and unprovisioned share.
    pub fn base_fleet(&self) -> Vec<SimDevice> {
        fleet(
            self.seed,
            self.fleet.devices,
            &self.mix(),
            self.fleet.unprovisioned_share,
        )
    }

    /// Every device that will appear on the network, for provisioning the inventory:
    /// the regular fleet, then the extra devices of cell-overload attacks (indices
    /// from `fleet.devices` on, all provisioned).
    pub fn devices(&self) -> Vec<SimDevice> {
        let mut all = self.base_fleet();
        let mut next = self.fleet.devices;
        for a in &self.attacks {
            if a.kind != AttackKind::CellOverload {
                continue;
            }
            let n = a.devices.unwrap_or(DEFAULT_OVERLOAD_DEVICES) * a.count;
            for _ in 0..n {
                all.push(crate::fleet::identity(self.seed, next, a.profile(), true));
                next += 1;
            }
        }
        all
    }

    /// Profiles used by the scenario's devices.
    pub fn profiles(&self) -> BTreeSet<Profile> {
        self.devices().iter().map(|d| d.profile).collect()
    }
}

/// Extra devices of a cell-overload attack when the scenario does not say.
pub const DEFAULT_OVERLOAD_DEVICES: u32 = 200;

/// Where a profile's devices live in the inventory: tenant and group, as `simguard
/// demo` provisions them and as labels name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub tenant: &'static str,
    pub tenant_name: &'static str,
    pub group: &'static str,
    pub group_name: &'static str,
}

/// The tenant and group of a profile's devices.
pub fn placement(p: Profile) -> Placement {
    let (tenant, tenant_name, group, group_name) = match p {
        Profile::SmartMeter => (
            "northgrid",
            "NorthGrid Utilities",
            "smart-meters",
            "Smart meters",
        ),
        Profile::PalletTracker => (
            "fastfreight",
            "FastFreight Logistics",
            "pallet-trackers",
            "Pallet trackers",
        ),
        Profile::PatientMonitor => (
            "medcare",
            "MedCare Remote",
            "patient-monitors",
            "Patient monitors",
        ),
        Profile::VendingMachine => ("vendco", "VendCo", "vending-machines", "Vending machines"),
        Profile::Camera => (
            "northgrid",
            "NorthGrid Utilities",
            "site-cameras",
            "Site cameras",
        ),
    };
    Placement {
        tenant,
        tenant_name,
        group,
        group_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        let s: Span = "1d 6h".parse().unwrap();
        assert_eq!(s.as_ms(), 30 * 3_600_000);
        assert_eq!(s.to_string(), "1d 6h");
        assert_eq!("90s".parse::<Span>().unwrap(), Span(90_000));
        assert_eq!("2h30m".parse::<Span>().unwrap(), Span(9_000_000));
        assert_eq!("250ms".parse::<Span>().unwrap(), Span(250));
        assert_eq!("1_000".parse::<Span>().unwrap(), Span(1_000_000));
        for bad in ["", "d", "3x", "1.5h", "-1s"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn times_parse_and_print() {
        let t: UnixTime = "2025-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(t.0, 1_735_689_600);
        assert_eq!(t.to_string(), "2025-01-01T00:00:00Z");
        let t: UnixTime = "2024-03-31T01:00:00Z".parse().unwrap();
        assert_eq!(t.0, 1_711_846_800);
        assert!("2025-13-01T00:00:00Z".parse::<UnixTime>().is_err());
        assert!("2025-01-01 00:00:00".parse::<UnixTime>().is_err());
    }

    #[test]
    fn placements_are_distinct_per_group() {
        let groups: BTreeSet<&str> = Profile::ALL.iter().map(|p| placement(*p).group).collect();
        assert_eq!(groups.len(), Profile::ALL.len());
    }
}
