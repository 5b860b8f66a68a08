//! Per-device detection state. Bounded and fixed-size: see [`DeviceDetect`]
//! and [`Burst`] for the bytes each costs.

use crate::finding::FindingKind;
use crate::ids::Digits;
use crate::traffic::DistinctSketch;
use serde::{Deserialize, Serialize};

/// Session starts remembered for flapping.
pub const STARTS: usize = 6;
/// Report times remembered for rhythm.
pub const REPORTS: usize = 4;
/// Per-report volumes (and intervals) remembered for the baselines.
pub const RING: usize = 16;
/// Finding kinds whose last time is remembered (for cooldowns).
pub const COOLDOWNS: usize = 6;

/// A quantity on a log scale in 1/8ths of a doubling, so that a byte or
/// second count from 1 to 2^31 fits a byte: ratios become differences and
/// one outlier cannot drag an order statistic far.
pub fn quantize(v: u64) -> u8 {
    if v <= 1 {
        return 0;
    }
    let l = (v as f64).log2() * 8.0;
    l.round().clamp(0.0, 255.0) as u8
}

/// The inverse of [`quantize`] (the middle of the bucket).
pub fn dequantize(q: u8) -> u64 {
    2f64.powf(f64::from(q) / 8.0).round() as u64
}

/// The last [`RING`] quantized values, oldest overwritten first.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct QRing {
    values: [u8; RING],
    len: u8,
    next: u8,
}

impl QRing {
    pub fn push(&mut self, q: u8) {
        self.values[usize::from(self.next)] = q;
        self.next = ((usize::from(self.next) + 1) % RING) as u8;
        self.len = (usize::from(self.len) + 1).min(RING) as u8;
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn sorted(&self) -> ([u8; RING], usize) {
        let mut v = self.values;
        let n = self.len();
        v[..n].sort_unstable();
        (v, n)
    }

    /// The value below which `pct` percent of the remembered values lie.
    pub fn quantile(&self, pct: usize) -> Option<u8> {
        let (v, n) = self.sorted();
        if n == 0 {
            return None;
        }
        let i = ((n - 1) * pct.min(100) + 50) / 100;
        Some(v[i])
    }
}

/// Per-device detection state, bounded: see `state_sizes_stay_as_documented`
/// for the bytes, plus one [`Burst`] for devices that have flows.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct DeviceDetect {
    /// Uplink bytes per report (quantized), anomalies excluded.
    pub volumes: QRing,
    /// Seconds between reports (quantized), anomalies excluded.
    pub intervals: QRing,
    /// Times (Unix seconds) of the last reports (Start and Interim records).
    pub reports: [u32; REPORTS],
    pub reports_next: u8,
    /// Times (Unix seconds) of the last session starts.
    pub starts: [u32; STARTS],
    pub starts_next: u8,
    /// Event time of the newest record of any kind (silence is measured from it).
    pub last_heard: i64,
    /// Event time of the newest Start/Interim (intervals are measured from it).
    pub last_report: i64,
    /// UTC day (days since 1970) that `day_up` counts.
    pub day: i32,
    pub day_up: u64,
    /// The first IMEISV seen, the reference when no IMEI is bound.
    pub first_imei: Option<Digits>,
    /// Country (ISO alpha-2 as bytes) of the newest located record and its time.
    pub country: Option<[u8; 2]>,
    pub country_time: i64,
    /// When the device counts as silent (0 = no expectation yet).
    pub silent_deadline: i64,
    /// Whether a silence timer is pending for this device.
    pub silent_armed: bool,
    /// Whether the current silence was already reported.
    pub silent_reported: bool,
    /// Consecutive volume anomalies (a lasting change is learned after a run).
    pub anomaly_run: u8,
    /// Recently raised kinds (kind + 1; 0 = free) and when (Unix minutes),
    /// for cooldowns. Two arrays, not pairs, to avoid padding.
    pub cooldown_kinds: [u8; COOLDOWNS],
    pub cooldown_minutes: [u32; COOLDOWNS],
    /// Scan and flood counters: only devices with flows have one.
    pub burst: Option<Box<Burst>>,
}

/// Repeated attempts to one never-seen destination (see `detect`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Beacon {
    pub key: u64,
    /// Unix seconds of the first attempt.
    pub first: u32,
    pub count: u16,
}

impl DeviceDetect {
    /// Whether a finding of `kind` may be raised at `now` (ms), and if so
    /// remembers that it was.
    pub fn allow(&mut self, kind: FindingKind, now: i64, cooldown_secs: u32) -> bool {
        let k = kind as u8 + 1;
        let minute = (now.max(0) / 60_000).min(i64::from(u32::MAX)) as u32;
        let window = cooldown_secs.div_ceil(60);
        if let Some(i) = self.cooldown_kinds.iter().position(|&kk| kk == k) {
            let last = self.cooldown_minutes[i];
            if minute < last.saturating_add(window) && minute >= last {
                return false;
            }
            self.cooldown_minutes[i] = minute;
            return true;
        }
        // Take a free slot, else forget the kind raised longest ago.
        let i = (0..COOLDOWNS)
            .min_by_key(|&i| (self.cooldown_kinds[i] != 0, self.cooldown_minutes[i]))
            .unwrap_or(0);
        self.cooldown_kinds[i] = k;
        self.cooldown_minutes[i] = minute;
        true
    }

    pub fn push_report(&mut self, secs: u32) {
        self.reports[usize::from(self.reports_next) % REPORTS] = secs;
        self.reports_next = ((usize::from(self.reports_next) + 1) % REPORTS) as u8;
    }

    /// Span (seconds) covered by the last `REPORTS` reports, once there are that many.
    pub fn report_span(&self) -> Option<u32> {
        if self.reports.contains(&0) {
            return None;
        }
        let max = self.reports.iter().max().copied()?;
        let min = self.reports.iter().min().copied()?;
        Some(max - min)
    }

    pub fn push_start(&mut self, secs: u32) {
        self.starts[usize::from(self.starts_next) % STARTS] = secs;
        self.starts_next = ((usize::from(self.starts_next) + 1) % STARTS) as u8;
    }

    /// Session starts at or after `since` (Unix seconds).
    pub fn starts_since(&self, since: u32) -> usize {
        self.starts
            .iter()
            .filter(|&&s| s != 0 && s >= since)
            .count()
    }
}

/// Flow counters of the current burst window (uplink only: what the device
/// sends is what it is responsible for).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Burst {
    /// Start of the window, Unix ms.
    pub start: i64,
    pub flows: u32,
    pub packets: u64,
    pub bytes: u64,
    /// TCP connection attempts, those never answered, and those to IoT ports.
    pub attempts: u32,
    pub unanswered: u32,
    pub iot_attempts: u32,
    /// Packets by flood shape.
    pub udp: u64,
    pub syn: u64,
    pub ack: u64,
    pub gre: u64,
    /// UDP/53 flows (queries) and the resolvers they went to.
    pub dns: u32,
    pub resolvers: DistinctSketch,
    pub remotes: DistinctSketch,
    pub ports: DistinctSketch,
    /// Heavy-hitter target (hash of the remote address) and its packets
    /// (Misra-Gries with one counter: the majority target if there is one).
    pub target: u64,
    pub target_votes: u64,
    pub target_packets: u64,
    /// Findings already raised in this window (bit per kind).
    pub raised: u8,
    /// The never-seen destination this device tried most recently (kept
    /// across windows: beaconing is slower than a burst).
    pub beacon: Beacon,
    /// See `allow_new_destination`. Survives `reset`, like `beacon`.
    pub new_destination_minute: u32,
}

impl Burst {
    pub const SCAN: u8 = 1;
    pub const DDOS: u8 = 2;
    pub const DNS: u8 = 4;

    pub fn reset(&mut self, start: i64) {
        *self = Burst {
            start,
            beacon: self.beacon,
            new_destination_minute: self.new_destination_minute,
            ..Burst::default()
        };
    }

    /// [`DeviceDetect::allow`] for new destinations, which have a slot of
    /// their own here (1 + the Unix minute of the last one; 0 = none): the
    /// group half of the flow detectors decides them after the device half
    /// of later flows ran (see `Detection::on_flow_group`), so they must not
    /// compete with the other kinds for the device's shared slots.
    pub fn allow_new_destination(&mut self, now: i64, cooldown_secs: u32) -> bool {
        let minute = (now.max(0) / 60_000).min(i64::from(u32::MAX - 1)) as u32;
        if let Some(last) = self.new_destination_minute.checked_sub(1) {
            if minute < last.saturating_add(cooldown_secs.div_ceil(60)) && minute >= last {
                return false;
            }
        }
        self.new_destination_minute = minute + 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_is_log_scale_and_roughly_invertible() {
        assert_eq!(quantize(0), 0);
        assert_eq!(quantize(1), 0);
        assert_eq!(quantize(2), 8);
        assert_eq!(quantize(1024), 80);
        let q = quantize(3_000);
        let back = dequantize(q);
        assert!((2_700..3_300).contains(&back), "{back}");
        // ×10 is about 26.6 steps whatever the size.
        let d = i32::from(quantize(40_000)) - i32::from(quantize(4_000));
        assert!((26..=27).contains(&d), "{d}");
    }

    #[test]
    fn ring_quantiles_ignore_one_outlier() {
        let mut r = QRing::default();
        for v in [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54] {
            r.push(v);
        }
        r.push(200);
        assert_eq!(r.len(), 16);
        assert_eq!(r.quantile(50), Some(48));
        assert!(r.quantile(90).unwrap() <= 54);
        for _ in 0..20 {
            r.push(60);
        }
        assert_eq!(r.quantile(0), Some(60), "old values are overwritten");
    }

    #[test]
    fn cooldown_suppresses_repeats_of_one_kind_only() {
        let mut d = DeviceDetect::default();
        let t = 1_700_000_000_000;
        assert!(d.allow(FindingKind::Scanning, t, 3600));
        assert!(!d.allow(FindingKind::Scanning, t + 60_000, 3600));
        assert!(d.allow(FindingKind::Ddos, t + 60_000, 3600));
        assert!(d.allow(FindingKind::Scanning, t + 3_600_000, 3600));
        // More kinds than slots: the oldest is forgotten, never a panic.
        for (i, k) in FindingKind::ALL.into_iter().enumerate() {
            assert!(
                d.allow(k, t + 7_200_000 + i as i64 * 60_000, 3600) || k == FindingKind::Scanning
            );
        }
    }

    #[test]
    fn starts_and_reports_rings() {
        let mut d = DeviceDetect::default();
        assert_eq!(d.report_span(), None);
        for s in [100, 160, 220, 280] {
            d.push_report(s);
        }
        assert_eq!(d.report_span(), Some(180));
        d.push_report(1000);
        assert_eq!(d.report_span(), Some(840));
        for s in 1..=10 {
            d.push_start(s * 30);
        }
        assert_eq!(d.starts_since(0), STARTS);
        assert_eq!(d.starts_since(250), 2, "270 and 300");
    }

    #[test]
    fn state_sizes_stay_as_documented() {
        assert_eq!(std::mem::size_of::<DeviceDetect>(), 176);
        assert_eq!(std::mem::size_of::<Burst>(), 176);
    }
}
