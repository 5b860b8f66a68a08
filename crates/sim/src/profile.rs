//! Device profiles: how often each kind of device talks, how much, over which radio, and whether it moves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use simguard_radius::tgpp::RatType;

/// The kinds of device in a simulated fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// One short session a day carrying a few KB.
    SmartMeter,
    /// Always-on, reports every 5 minutes, moves between cells and countries.
    PalletTracker,
    /// Always-on, reports hourly.
    PatientMonitor,
    /// A few sessions a day: telemetry and sales transactions.
    VendingMachine,
    /// Always-on and heavy: megabytes of video per interim.
    Camera,
}

/// Error for an unknown profile name or a malformed mix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseProfileError {
    #[error("unknown device profile {0:?} (expected one of smart-meter, pallet-tracker, patient-monitor, vending-machine, camera)")]
    UnknownProfile(String),
    #[error("bad weight in profile mix entry {0:?}")]
    BadWeight(String),
    #[error("profile mix has no positive weight")]
    Empty,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::SmartMeter,
        Profile::PalletTracker,
        Profile::PatientMonitor,
        Profile::VendingMachine,
        Profile::Camera,
    ];

    /// The kebab-case name used on the command line and in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::SmartMeter => "smart-meter",
            Profile::PalletTracker => "pallet-tracker",
            Profile::PatientMonitor => "patient-monitor",
            Profile::VendingMachine => "vending-machine",
            Profile::Camera => "camera",
        }
    }

    /// Seconds between reports; also the Acct-Interim-Interval the device's records carry.
    pub fn report_interval_secs(&self) -> u32 {
        self.behaviour().interval_secs
    }

    /// Mean uplink + downlink bytes per day that the generator produces for one device.
    pub fn expected_bytes_per_day(&self) -> u64 {
        let b = self.behaviour();
        let reports_per_day = 86_400.0 / f64::from(b.interval_secs);
        let per_report = b.up.mean() + b.down.mean() + b.bulk_mean();
        (reports_per_day * per_report).round() as u64
    }

    /// True for devices that hold one long session and send Interim-Updates,
    /// false for devices that open a short session per report.
    pub fn always_on(&self) -> bool {
        self.behaviour().always_on
    }

    pub(crate) fn index(&self) -> usize {
        match self {
            Profile::SmartMeter => 0,
            Profile::PalletTracker => 1,
            Profile::PatientMonitor => 2,
            Profile::VendingMachine => 3,
            Profile::Camera => 4,
        }
    }

    pub(crate) fn behaviour(&self) -> &'static Behaviour {
        &BEHAVIOURS[self.index()]
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = ParseProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == t)
            .ok_or_else(|| ParseProfileError::UnknownProfile(s.to_string()))
    }
}

/// An inclusive byte range drawn uniformly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range {
    pub lo: u64,
    pub hi: u64,
}

impl Range {
    pub fn mean(&self) -> f64 {
        (self.lo + self.hi) as f64 / 2.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mobility {
    Static,
    Mobile,
}

/// Everything about a profile's traffic and radio. One table so that the README,
/// `expected_bytes_per_day` and the generator cannot disagree.
#[derive(Debug)]
pub(crate) struct Behaviour {
    pub interval_secs: u32,
    pub always_on: bool,
    /// Per-report profiles: how long the session stays up. Always-on: session lifetime.
    pub session_secs: (u32, u32),
    /// Pause before an always-on device re-attaches after a Stop.
    pub reattach_secs: (u32, u32),
    /// Relative jitter of the report period for per-report profiles, in per mille.
    pub jitter_permille: u32,
    pub up: Range,
    pub down: Range,
    /// Occasional large downlink transfer (firmware, price list) per report, in per mille, and its size.
    pub bulk_permille: u32,
    pub bulk_bytes: u64,
    pub up_packet_bytes: u64,
    pub down_packet_bytes: u64,
    pub rats: &'static [(RatType, u32)],
    /// Type Allocation Codes of the modules such devices carry. Illustrative values
    /// in the ranges module vendors are allocated from, not a claim about a product.
    pub tacs: &'static [&'static str],
    pub mobility: Mobility,
    pub charging_characteristics: &'static str,
    /// Terminate-Cause of a planned Stop.
    pub stop_cause: u32,
}

impl Behaviour {
    pub fn bulk_mean(&self) -> f64 {
        self.bulk_bytes as f64 * f64::from(self.bulk_permille) / 1000.0
    }
}

pub(crate) use simguard_radius::acct::terminate_cause::{
    IDLE_TIMEOUT as CAUSE_IDLE_TIMEOUT, LOST_CARRIER as CAUSE_LOST_CARRIER,
    SESSION_TIMEOUT as CAUSE_SESSION_TIMEOUT, USER_REQUEST as CAUSE_USER_REQUEST,
};

const KB: u64 = 1_000;
const MB: u64 = 1_000_000;

static BEHAVIOURS: [Behaviour; 5] = [
    // Smart meter: wakes once a day, pushes its register readings, detaches.
    Behaviour {
        interval_secs: 86_400,
        always_on: false,
        session_secs: (5, 60),
        reattach_secs: (0, 0),
        jitter_permille: 10,
        up: Range {
            lo: 1_500,
            hi: 4_500,
        },
        down: Range { lo: 500, hi: 1_500 },
        bulk_permille: 2,
        bulk_bytes: 200 * KB,
        up_packet_bytes: 120,
        down_packet_bytes: 90,
        rats: &[
            (RatType::NB_IOT, 85),
            (RatType::LTE_M, 10),
            (RatType::GERAN, 5),
        ],
        tacs: &["86695504", "86742204", "35461210"],
        mobility: Mobility::Static,
        charging_characteristics: "0800",
        stop_cause: CAUSE_USER_REQUEST,
    },
    // Pallet tracker: GNSS fix and sensor data every five minutes while moving across Europe.
    Behaviour {
        interval_secs: 300,
        always_on: true,
        session_secs: (4 * 3_600, 24 * 3_600),
        reattach_secs: (30, 300),
        jitter_permille: 0,
        up: Range { lo: 800, hi: 2_400 },
        down: Range { lo: 200, hi: 600 },
        bulk_permille: 0,
        bulk_bytes: 0,
        up_packet_bytes: 150,
        down_packet_bytes: 80,
        rats: &[
            (RatType::LTE_M, 80),
            (RatType::GERAN, 15),
            (RatType::UTRAN, 5),
        ],
        tacs: &["35273109", "86691505", "35894710"],
        mobility: Mobility::Mobile,
        charging_characteristics: "0800",
        stop_cause: CAUSE_IDLE_TIMEOUT,
    },
    // Patient monitor: hourly upload of vital-sign series, always reachable.
    Behaviour {
        interval_secs: 3_600,
        always_on: true,
        session_secs: (12 * 3_600, 48 * 3_600),
        reattach_secs: (5, 60),
        jitter_permille: 0,
        up: Range {
            lo: 30 * KB,
            hi: 70 * KB,
        },
        down: Range {
            lo: 2 * KB,
            hi: 6 * KB,
        },
        bulk_permille: 5,
        bulk_bytes: 500 * KB,
        up_packet_bytes: 600,
        down_packet_bytes: 100,
        rats: &[
            (RatType::EUTRAN, 60),
            (RatType::LTE_M, 30),
            (RatType::UTRAN, 10),
        ],
        tacs: &["35412311", "86804005"],
        mobility: Mobility::Static,
        charging_characteristics: "0800",
        stop_cause: CAUSE_SESSION_TIMEOUT,
    },
    // Vending machine: a few sessions a day with telemetry and card transactions,
    // now and then a price-list download.
    Behaviour {
        interval_secs: 21_600,
        always_on: false,
        session_secs: (60, 300),
        reattach_secs: (0, 0),
        jitter_permille: 50,
        up: Range {
            lo: 6 * KB,
            hi: 24 * KB,
        },
        down: Range {
            lo: 2 * KB,
            hi: 8 * KB,
        },
        bulk_permille: 50,
        bulk_bytes: 100 * KB,
        up_packet_bytes: 300,
        down_packet_bytes: 200,
        rats: &[
            (RatType::EUTRAN, 50),
            (RatType::LTE_M, 20),
            (RatType::GERAN, 20),
            (RatType::UTRAN, 10),
        ],
        tacs: &["35745207", "86420003", "35316908"],
        mobility: Mobility::Static,
        charging_characteristics: "0400",
        stop_cause: CAUSE_USER_REQUEST,
    },
    // Camera: always-on video uplink; multi-day sessions push counters past 4 GiB.
    Behaviour {
        interval_secs: 900,
        always_on: true,
        session_secs: (24 * 3_600, 96 * 3_600),
        reattach_secs: (2, 20),
        jitter_permille: 0,
        up: Range {
            lo: 10 * MB,
            hi: 40 * MB,
        },
        down: Range {
            lo: 200 * KB,
            hi: 600 * KB,
        },
        bulk_permille: 0,
        bulk_bytes: 0,
        up_packet_bytes: 1_300,
        down_packet_bytes: 80,
        rats: &[(RatType::EUTRAN, 100)],
        tacs: &["86878004", "35903812"],
        mobility: Mobility::Static,
        charging_characteristics: "0800",
        stop_cause: CAUSE_SESSION_TIMEOUT,
    },
];

/// Relative weights of the profiles in a fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileMix {
    weights: [u32; 5],
}

impl ProfileMix {
    /// A mix from `(profile, weight)` pairs; profiles not named get weight 0.
    /// `None` if no weight is positive.
    pub fn new(weights: &[(Profile, u32)]) -> Option<Self> {
        let mut w = [0u32; 5];
        for (p, x) in weights {
            w[p.index()] = w[p.index()].saturating_add(*x);
        }
        if w.iter().all(|x| *x == 0) {
            None
        } else {
            Some(ProfileMix { weights: w })
        }
    }

    /// A fleet of one profile only.
    pub fn only(profile: Profile) -> Self {
        let mut weights = [0u32; 5];
        weights[profile.index()] = 1;
        ProfileMix { weights }
    }

    pub fn weight(&self, profile: Profile) -> u32 {
        self.weights[profile.index()]
    }

    /// How many of `devices` get each profile: proportional, largest remainder, so
    /// that even a 50-device fleet has the mix's shape rather than a lottery of it.
    pub(crate) fn counts(&self, devices: u32) -> [u32; 5] {
        let total: u64 = self.weights.iter().map(|w| u64::from(*w)).sum();
        let mut counts = [0u32; 5];
        if total == 0 {
            return counts;
        }
        let mut rems = [(0u64, 0usize); 5];
        let mut given = 0u32;
        for (i, w) in self.weights.iter().enumerate() {
            let exact = u64::from(devices) * u64::from(*w);
            counts[i] = (exact / total) as u32;
            given += counts[i];
            rems[i] = (exact % total, i);
        }
        // Ties go to the lower index so the split is a pure function of the mix.
        rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rem, i) in rems {
            if given >= devices {
                break;
            }
            if rem > 0 {
                counts[i] += 1;
                given += 1;
            }
        }
        counts
    }
}

impl Default for ProfileMix {
    fn default() -> Self {
        ProfileMix {
            weights: [50, 25, 10, 10, 5],
        }
    }
}

impl FromStr for ProfileMix {
    type Err = ParseProfileError;

    /// `"smart-meter=50,pallet-tracker=25,camera=5"`; a bare name means weight 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pairs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = match part.split_once('=') {
                Some((n, w)) => {
                    let w: u32 = w
                        .trim()
                        .parse()
                        .map_err(|_| ParseProfileError::BadWeight(part.to_string()))?;
                    (n, w)
                }
                None => (part, 1),
            };
            pairs.push((name.parse::<Profile>()?, weight));
        }
        ProfileMix::new(&pairs).ok_or(ParseProfileError::Empty)
    }
}

impl fmt::Display for ProfileMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for p in Profile::ALL {
            let w = self.weight(p);
            if w > 0 {
                if !first {
                    f.write_str(",")?;
                }
                write!(f, "{p}={w}")?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>().unwrap(), p);
        }
        assert!("toaster".parse::<Profile>().is_err());
    }

    #[test]
    fn mix_parses_and_counts() {
        let m: ProfileMix = "smart-meter=50,pallet-tracker=25,camera=5".parse().unwrap();
        assert_eq!(m.weight(Profile::SmartMeter), 50);
        assert_eq!(m.weight(Profile::PatientMonitor), 0);
        let c = m.counts(80);
        assert_eq!(c.iter().sum::<u32>(), 80);
        assert_eq!(c, [50, 25, 0, 0, 5]);
        let d = ProfileMix::default().counts(50);
        assert_eq!(d.iter().sum::<u32>(), 50);
        assert_eq!(d[0], 25);
        assert!("camera=0".parse::<ProfileMix>().is_err());
        assert!("camera=x".parse::<ProfileMix>().is_err());
        assert_eq!(
            "camera".parse::<ProfileMix>().unwrap(),
            ProfileMix::only(Profile::Camera)
        );
        assert_eq!(m.to_string(), "smart-meter=50,pallet-tracker=25,camera=5");
    }

    #[test]
    fn small_fleets_never_overshoot() {
        for n in 0..40 {
            let c = ProfileMix::default().counts(n);
            assert_eq!(c.iter().sum::<u32>(), n);
        }
    }

    #[test]
    fn expected_bytes_ordering() {
        let b = |p: Profile| p.expected_bytes_per_day();
        assert!(b(Profile::SmartMeter) < 10_000);
        assert!(b(Profile::Camera) > 1_000_000_000);
        assert!(b(Profile::SmartMeter) < b(Profile::VendingMachine));
        assert!(b(Profile::PalletTracker) < b(Profile::PatientMonitor));
    }
}
