//! Scoring of detection against ground truth, for `simguard eval`.
//!
//! Pure: findings and labels in, metrics out. The rules, which EVALUATION.md
//! repeats:
//! - A label (one attack on one device, or on one cell) is **detected** when
//!   a finding of one of the attack's accepted types names the same device
//!   (or cell) with a time in [onset, end + grace]. Time to detect is the
//!   first such finding's time minus the onset, in simulated time.
//! - A finding is **true** when it names a device (or cell) under some
//!   attack and falls in that attack's [onset, end + grace], whatever its
//!   type (a scanning camera that also contacts new destinations really
//!   does), or when it reports an IMSI that really is unprovisioned.
//!   Every other finding is **false**, including findings about attacked
//!   devices outside their attacks and findings during the warm-up.
//! - False findings per 10,000 benign device-days count findings about
//!   devices no attack touched, after the warm-up, over the benign devices'
//!   device-days after the warm-up. Findings during the warm-up are
//!   reported separately.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// RADIUS event times are whole seconds (Event-Timestamp); labels are in
/// milliseconds. A finding on the record at the onset can read up to this
/// much earlier than the label.
const TIME_RESOLUTION_MS: i64 = 1_000;

/// Jitter of a device's reporting period allowed on top of one interval.
const REPORT_JITTER_MS: i64 = 5_000;

/// A finding as the API returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub kind: String,
    pub detector: String,
    /// "device", "cell", "network" or "apn".
    pub subject_type: String,
    pub subject: String,
    pub time_ms: i64,
    /// The evidence's one-line summary (shown for false findings).
    pub summary: String,
}

/// One attack instance of the ground truth.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    pub attack: String,
    /// The device's IMSI, or None for attacks on a cell.
    pub imsi: Option<String>,
    pub cell: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// How long after the end a finding still counts (deadline-based
    /// detectors such as silence fire after the fact).
    pub grace_ms: i64,
    /// The reporting interval of the device's profile (volume and rhythm
    /// changes must be found within one).
    pub interval_secs: Option<u32>,
    /// When the attack began to change the device's behaviour, if before
    /// `start_ms` (a roaming SIM leaves hours before it shows up abroad).
    pub onset_ms: Option<i64>,
    /// Time the attack needs to undo itself after `end_ms` (the SIM's trip
    /// back), ms.
    pub wind_down_ms: i64,
}

impl Truth {
    /// Whether a finding about this subject at `t` is explained by the
    /// attack: from its onset to its end, plus the grace and the wind-down.
    fn explains(&self, kind: &str, t: i64) -> bool {
        let from = self.onset_ms.unwrap_or(self.start_ms).min(self.start_ms) - TIME_RESOLUTION_MS;
        let until = self.end_ms + self.grace_ms + self.wind_down_ms;
        // A day's declared volume stays exceeded by the attack's bytes
        // until the UTC day ends.
        let day_end = (self.end_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
        t >= from && (t <= until || (kind == "declared_volume" && t < day_end))
    }
}

const DAY_MS: i64 = 86_400_000;

/// The finding types that count as detecting each attack.
pub fn accepted(attack: &str) -> &'static [&'static str] {
    match attack {
        "mirai-scan" => &["scanning"],
        "ddos-udp" | "ddos-syn" | "ddos-ack" | "ddos-gre" => &["ddos"],
        "dns-water-torture" => &["dns_water_torture"],
        "volume-spike-x10" | "volume-spike-x100" => &["volume_anomaly", "declared_volume"],
        "rhythm-change" => &["declared_rhythm", "rhythm_anomaly"],
        "exfiltration" => &["new_destination"],
        "sim-swap-phone" => &["sim_swap"],
        "roaming-disallowed" => &["roaming"],
        "impossible-travel" => &["impossible_travel"],
        "silent" => &["silent"],
        "flapping" => &["flapping"],
        "cell-overload" => &["overload"],
        _ => &[],
    }
}

/// The time-to-detect target of an attack type, ms (None: no target).
pub fn ttd_target_ms(attack: &str, interval_secs: Option<u32>) -> Option<i64> {
    match attack {
        "mirai-scan" | "ddos-udp" | "ddos-syn" | "ddos-ack" | "ddos-gre" | "dns-water-torture" => {
            Some(10_000)
        }
        // "On the first record that shows them": the record at the onset,
        // allowing the second it takes to arrive.
        "sim-swap-phone" | "roaming-disallowed" | "exfiltration" | "impossible-travel" => {
            Some(1_000)
        }
        // The first report after the onset can come one interval (plus the
        // profile's few seconds of jitter) later.
        "volume-spike-x10" | "volume-spike-x100" | "rhythm-change" => {
            interval_secs.map(|s| i64::from(s) * 1000 + REPORT_JITTER_MS)
        }
        _ => None,
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AttackScore {
    pub attack: String,
    pub instances: usize,
    pub detected: usize,
    pub recall: f64,
    pub ttd_p50_s: Option<f64>,
    pub ttd_p99_s: Option<f64>,
    pub ttd_target_s: Option<f64>,
    /// Detected instances over the time-to-detect target.
    pub late: usize,
    /// Instances not detected, with their device or cell.
    pub missed: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DetectorScore {
    pub detector: String,
    pub findings: usize,
    pub true_findings: usize,
    pub precision: Option<f64>,
    /// Finding types of the false ones, with counts.
    pub false_by_type: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub attacks: Vec<AttackScore>,
    pub detectors: Vec<DetectorScore>,
    pub findings: usize,
    pub true_findings: usize,
    pub precision: Option<f64>,
    /// Findings about benign devices after the warm-up.
    pub benign_false_findings: usize,
    pub benign_device_days: f64,
    pub false_per_10k_device_days: f64,
    /// Findings before the warm-up ended (learning period), not scored.
    pub warmup_findings: usize,
    /// Examples of false findings (type, subject, time) for diagnosis.
    pub false_examples: Vec<String>,
}

fn quantile(sorted: &[i64], pct: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) * pct + 50) / 100;
    Some(sorted[i] as f64 / 1000.0)
}

fn subject_matches(f: &Found, t: &Truth) -> bool {
    match (&t.imsi, &t.cell) {
        (Some(imsi), _) => f.subject_type == "device" && &f.subject == imsi,
        (None, Some(cell)) => f.subject_type == "cell" && &f.subject == cell,
        (None, None) => false,
    }
}

/// Scores `found` against `truth`.
///
/// `benign` are the IMSIs no attack touched; `unprovisioned` the IMSIs that
/// are really not provisioned; findings before `warmup_end_ms` are not scored.
pub fn score(
    found: &[Found],
    truth: &[Truth],
    benign: &BTreeSet<String>,
    unprovisioned: &BTreeSet<String>,
    warmup_end_ms: i64,
    benign_device_days: f64,
) -> Evaluation {
    let mut by_subject: HashMap<&str, Vec<&Truth>> = HashMap::new();
    for t in truth {
        if let Some(k) = t.imsi.as_deref().or(t.cell.as_deref()) {
            by_subject.entry(k).or_default().push(t);
        }
    }
    // Attacks.
    let mut kinds: BTreeMap<&str, Vec<&Truth>> = BTreeMap::new();
    for t in truth {
        kinds.entry(t.attack.as_str()).or_default().push(t);
    }
    let mut attacks = Vec::new();
    for (attack, list) in kinds {
        let ok = accepted(attack);
        let mut ttds = Vec::new();
        let mut missed = Vec::new();
        for t in &list {
            let first = found
                .iter()
                .filter(|f| {
                    ok.contains(&f.kind.as_str())
                        && subject_matches(f, t)
                        && f.time_ms >= t.start_ms - TIME_RESOLUTION_MS
                        && f.time_ms <= t.end_ms + t.grace_ms
                })
                .map(|f| f.time_ms)
                .min();
            match first {
                Some(ft) => ttds.push(((ft - t.start_ms).max(0), t.interval_secs)),
                None => missed.push(
                    t.imsi
                        .clone()
                        .or_else(|| t.cell.clone())
                        .unwrap_or_default(),
                ),
            }
        }
        let target = ttd_target_ms(attack, list.first().and_then(|t| t.interval_secs));
        let late = ttds
            .iter()
            .filter(|(d, iv)| ttd_target_ms(attack, *iv).is_some_and(|tg| *d > tg))
            .count();
        let mut sorted: Vec<i64> = ttds.iter().map(|(d, _)| *d).collect();
        sorted.sort_unstable();
        attacks.push(AttackScore {
            attack: attack.to_string(),
            instances: list.len(),
            detected: ttds.len(),
            recall: ttds.len() as f64 / list.len().max(1) as f64,
            ttd_p50_s: quantile(&sorted, 50),
            ttd_p99_s: quantile(&sorted, 99),
            ttd_target_s: target.map(|t| t as f64 / 1000.0),
            late,
            missed,
        });
    }
    // Findings.
    let mut det: BTreeMap<String, DetectorScore> = BTreeMap::new();
    let mut total = 0;
    let mut true_total = 0;
    let mut benign_false = 0;
    let mut warmup = 0;
    let mut false_examples = Vec::new();
    for f in found {
        if f.time_ms < warmup_end_ms {
            warmup += 1;
            continue;
        }
        total += 1;
        let is_true = (f.kind == "unprovisioned" && unprovisioned.contains(&f.subject))
            || by_subject.get(f.subject.as_str()).is_some_and(|ts| {
                ts.iter()
                    .any(|t| subject_matches(f, t) && t.explains(&f.kind, f.time_ms))
            })
            // A cell overload also shows on the cell's network and APN.
            || (f.kind == "overload"
                && f.subject_type != "device"
                && truth.iter().any(|t| {
                    t.attack == "cell-overload"
                        && f.time_ms >= t.start_ms
                        && f.time_ms <= t.end_ms + t.grace_ms
                }));
        let d = det
            .entry(f.detector.clone())
            .or_insert_with(|| DetectorScore {
                detector: f.detector.clone(),
                findings: 0,
                true_findings: 0,
                precision: None,
                false_by_type: BTreeMap::new(),
            });
        d.findings += 1;
        if is_true {
            d.true_findings += 1;
            true_total += 1;
        } else {
            *d.false_by_type.entry(f.kind.clone()).or_default() += 1;
            if false_examples.len() < 20 {
                false_examples.push(format!(
                    "{} {} {} at {}: {}",
                    f.kind, f.subject_type, f.subject, f.time_ms, f.summary
                ));
            }
            if f.subject_type == "device" && benign.contains(&f.subject) {
                benign_false += 1;
            }
        }
    }
    let mut detectors: Vec<DetectorScore> = det.into_values().collect();
    for d in &mut detectors {
        d.precision = (d.findings > 0).then(|| d.true_findings as f64 / d.findings as f64);
    }
    Evaluation {
        attacks,
        detectors,
        findings: total,
        true_findings: true_total,
        precision: (total > 0).then(|| true_total as f64 / total as f64),
        benign_false_findings: benign_false,
        benign_device_days,
        false_per_10k_device_days: if benign_device_days > 0.0 {
            benign_false as f64 * 10_000.0 / benign_device_days
        } else {
            0.0
        },
        warmup_findings: warmup,
        false_examples,
    }
}

impl Evaluation {
    /// Which of the targets are missed (empty: all met).
    pub fn missed_targets(&self) -> Vec<String> {
        let mut v = Vec::new();
        for a in &self.attacks {
            if a.recall < 0.95 {
                v.push(format!("{}: recall {:.2} < 0.95", a.attack, a.recall));
            }
            if a.late > 0 {
                v.push(format!(
                    "{}: {} of {} detected later than the {:.0} s target",
                    a.attack,
                    a.late,
                    a.detected,
                    a.ttd_target_s.unwrap_or(0.0)
                ));
            }
        }
        if self.precision.is_some_and(|p| p < 0.95) {
            v.push(format!(
                "precision {:.3} < 0.95",
                self.precision.unwrap_or(0.0)
            ));
        }
        if self.false_per_10k_device_days > 1.0 {
            v.push(format!(
                "{:.2} false findings per 10,000 benign device-days > 1",
                self.false_per_10k_device_days
            ));
        }
        v
    }

    /// The results as a Markdown table (what EVALUATION.md holds).
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "| attack | instances | detected | recall | TTD p50 | TTD p99 | TTD target | late |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|---|\n");
        let secs = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.1} s"));
        for a in &self.attacks {
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} |\n",
                a.attack,
                a.instances,
                a.detected,
                a.recall,
                secs(a.ttd_p50_s),
                secs(a.ttd_p99_s),
                secs(a.ttd_target_s),
                a.late
            ));
        }
        s.push('\n');
        s.push_str("| detector | findings | true | precision | false by type |\n");
        s.push_str("|---|---|---|---|---|\n");
        for d in &self.detectors {
            let falses: Vec<String> = d
                .false_by_type
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                d.detector,
                d.findings,
                d.true_findings,
                d.precision.map_or("–".into(), |p| format!("{p:.3}")),
                if falses.is_empty() {
                    "–".into()
                } else {
                    falses.join(", ")
                }
            ));
        }
        s.push('\n');
        s.push_str(&format!(
            "All findings after the warm-up: {} ({} true), precision {}. Findings about benign devices: {} over {:.0} benign device-days = **{:.2} per 10,000 device-days**. Findings during the warm-up (not scored): {}.\n",
            self.findings,
            self.true_findings,
            self.precision.map_or("–".into(), |p| format!("{p:.3}")),
            self.benign_false_findings,
            self.benign_device_days,
            self.false_per_10k_device_days,
            self.warmup_findings
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: &str, detector: &str, subject: &str, t: i64) -> Found {
        Found {
            kind: kind.into(),
            detector: detector.into(),
            subject_type: "device".into(),
            subject: subject.into(),
            time_ms: t,
            summary: String::new(),
        }
    }

    fn t(attack: &str, imsi: &str, start: i64, end: i64) -> Truth {
        Truth {
            attack: attack.into(),
            imsi: Some(imsi.into()),
            cell: None,
            start_ms: start,
            end_ms: end,
            grace_ms: 1_000,
            interval_secs: Some(900),
            onset_ms: None,
            wind_down_ms: 0,
        }
    }

    #[test]
    fn recall_precision_ttd_and_false_rate() {
        let truth = vec![
            t("mirai-scan", "1", 10_000, 20_000),
            t("mirai-scan", "2", 10_000, 20_000),
            t("silent", "3", 10_000, 20_000),
        ];
        let found = vec![
            f("scanning", "botnet", "1", 12_000), // detected, 2 s
            f("new_destination", "destinations", "1", 13_000), // true, other type
            f("scanning", "botnet", "2", 25_000), // after end + grace: false, and missed
            f("silent", "connectivity", "4", 15_000), // benign device: false
            f("volume_anomaly", "baseline", "4", 500), // warm-up: not scored
        ];
        let benign: BTreeSet<String> = ["4".to_string()].into();
        let e = score(&found, &truth, &benign, &BTreeSet::new(), 1_000, 5_000.0);
        let scan = e.attacks.iter().find(|a| a.attack == "mirai-scan").unwrap();
        assert_eq!((scan.instances, scan.detected), (2, 1));
        assert_eq!(scan.recall, 0.5);
        assert_eq!(scan.ttd_p50_s, Some(2.0));
        assert_eq!(scan.missed, vec!["2".to_string()]);
        let silent = e.attacks.iter().find(|a| a.attack == "silent").unwrap();
        assert_eq!(silent.detected, 0);
        assert_eq!(e.findings, 4);
        assert_eq!(e.true_findings, 2);
        assert_eq!(e.precision, Some(0.5));
        assert_eq!(e.warmup_findings, 1);
        assert_eq!(e.benign_false_findings, 1);
        assert!((e.false_per_10k_device_days - 2.0).abs() < 1e-9);
        let botnet = e.detectors.iter().find(|d| d.detector == "botnet").unwrap();
        assert_eq!((botnet.findings, botnet.true_findings), (2, 1));
        assert!(!e.missed_targets().is_empty());
        assert!(e.table().contains("| mirai-scan | 2 | 1 | 0.50 |"));
    }

    #[test]
    fn a_finding_explained_by_the_attack_around_its_window_is_true() {
        // A roaming SIM leaves at 0, shows up abroad at 10 s, stays until
        // 20 s and needs 10 s to come back.
        let mut truth = t("roaming-disallowed", "1", 10_000, 20_000);
        truth.onset_ms = Some(0);
        truth.wind_down_ms = 10_000;
        let found = vec![
            f("silent", "connectivity", "1", 5_000), // while it travels there
            f("silent", "connectivity", "1", 30_000), // while it travels back
            f("silent", "connectivity", "1", 45_000), // later: unexplained
            f("roaming", "location", "1", 10_000),
        ];
        let e = score(&found, &[truth], &BTreeSet::new(), &BTreeSet::new(), 0, 1.0);
        assert_eq!((e.findings, e.true_findings), (4, 3));
        assert_eq!(e.attacks[0].detected, 1);
        // A day's declared volume stays exceeded after the spike, that day only.
        let spike = t("volume-spike-x10", "2", 3_600_000, 7_200_000);
        let found = vec![
            f("declared_volume", "declared", "2", 20_000_000),
            f("declared_volume", "declared", "2", 90_000_000),
        ];
        let e = score(&found, &[spike], &BTreeSet::new(), &BTreeSet::new(), 0, 1.0);
        assert_eq!((e.findings, e.true_findings), (2, 1));
    }

    #[test]
    fn late_detection_misses_the_time_target() {
        let truth = vec![t("ddos-udp", "1", 0, 60_000)];
        let found = vec![f("ddos", "botnet", "1", 30_000)];
        let e = score(&found, &truth, &BTreeSet::new(), &BTreeSet::new(), 0, 1.0);
        assert_eq!(e.attacks[0].late, 1);
        assert!(e.missed_targets().iter().any(|m| m.contains("later")));
    }
}
