//! Detection knobs. Integers only, so that options compare exactly and are
//! part of the engine snapshot (a replay must use the values the original
//! run used). Every default is documented in `config/simguard.toml`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectOptions {
    /// Reports a device must have made before its own baseline is used;
    /// until then it is held to its group's (cohort) baseline.
    pub warmup_reports: u32,
    /// Uplink per report above this percentage of the learned high (the
    /// baseline's ~90th percentile) is a volume anomaly.
    pub volume_factor_pct: u32,
    /// Reports smaller than this are never volume anomalies (noise).
    pub volume_min_bytes: u64,
    /// Reports this many times more often than expected are a rhythm change.
    pub rhythm_factor: u32,
    /// Session starts within `flap_window_secs` that make a device flapping.
    pub flap_starts: u32,
    pub flap_window_secs: u32,
    /// Silent after this percentage of the expected interval without a
    /// record, plus `silent_grace_secs`.
    pub silent_factor_pct: u32,
    pub silent_grace_secs: u32,
    /// Flow burst window for scanning and flood detection.
    pub burst_window_secs: u32,
    /// Distinct destinations in one burst window that make a scan.
    pub scan_min_destinations: u32,
    /// Share of the window's TCP attempts that went unanswered, percent.
    pub scan_unanswered_pct: u32,
    /// Uplink packets per second towards few targets that make a flood.
    pub ddos_min_pps: u32,
    /// Share of the window's uplink packets that go to one target, percent.
    pub ddos_target_share_pct: u32,
    /// Distinct destination ports in the window for a UDP/SYN/ACK flood
    /// (GRE has no ports). Streams use one port; floods randomise them.
    pub ddos_min_ports: u32,
    /// DNS queries (UDP/53 flows) per second that make water torture.
    pub dns_min_qps: u32,
    /// A group learns its destinations for this long after its first flow;
    /// after it, an uplink to a destination the group never used is new.
    pub destinations_warmup_secs: u32,
    /// Uplink flows smaller than this to a new destination are not flagged.
    pub new_destination_min_bytes: u64,
    /// A service is a provider prefix of this many bits (IPv4; the
    /// destination network inside it is the /24)...
    pub known_service_prefix_v4: u32,
    /// ...or of this many bits (IPv6; the network is the /48), with a port
    /// and a protocol.
    pub known_service_prefix_v6: u32,
    /// A completed TCP session to a new destination network is a known
    /// service on a new address, not a new destination, when the group has
    /// already completed TCP sessions with the same service on at least
    /// this many other networks: cloud services rotate their addresses
    /// across their prefixes. 0 = off (every new network is new).
    pub known_service_min_networks: u32,
    /// Travel faster than this between consecutive countries is impossible...
    pub travel_max_kmh: u32,
    /// ...after this much distance is forgiven (country centroids are far
    /// from the borders a device actually crosses).
    pub travel_slack_km: u32,
    /// Overload: attaches per cell, network or APN in this window...
    pub overload_window_secs: u32,
    /// ...at least this many...
    pub overload_min_attaches: u32,
    /// ...and this many times the key's baseline.
    pub overload_factor: u32,
    /// Overload needs this much history (event time) before it judges.
    pub overload_warmup_secs: u32,
    /// A device whose own median report is this many percent of its
    /// group's 90th percentile is a cohort outlier (so up to a tenth of a
    /// group can be unusual before the cohort itself looks unusual).
    pub cohort_factor_pct: u32,
    /// Reports the group needs before cohort comparisons are made.
    pub cohort_min_reports: u32,
    /// Traffic this far outside the declared active hours is flagged.
    pub active_hours_slack_mins: u32,
    /// The same kind of finding for the same device is raised at most once
    /// per this long (repeats are the alert layer's business).
    pub cooldown_secs: u32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            warmup_reports: 6,
            volume_factor_pct: 250,
            volume_min_bytes: 8_192,
            rhythm_factor: 4,
            flap_starts: 5,
            flap_window_secs: 900,
            silent_factor_pct: 200,
            silent_grace_secs: 300,
            burst_window_secs: 5,
            scan_min_destinations: 48,
            scan_unanswered_pct: 80,
            ddos_min_pps: 200,
            ddos_target_share_pct: 70,
            ddos_min_ports: 16,
            dns_min_qps: 20,
            destinations_warmup_secs: 86_400,
            new_destination_min_bytes: 32_768,
            known_service_prefix_v4: 16,
            known_service_prefix_v6: 32,
            known_service_min_networks: 2,
            travel_max_kmh: 1_000,
            travel_slack_km: 1_500,
            overload_window_secs: 600,
            overload_min_attaches: 50,
            overload_factor: 5,
            overload_warmup_secs: 3_600,
            cohort_factor_pct: 400,
            cohort_min_reports: 200,
            active_hours_slack_mins: 60,
            cooldown_secs: 3_600,
        }
    }
}

impl DetectOptions {
    /// Checks that the knobs make sense; names the first that does not.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("warmup_reports", u64::from(self.warmup_reports)),
            ("volume_factor_pct", u64::from(self.volume_factor_pct)),
            ("rhythm_factor", u64::from(self.rhythm_factor)),
            ("flap_starts", u64::from(self.flap_starts)),
            ("flap_window_secs", u64::from(self.flap_window_secs)),
            ("silent_factor_pct", u64::from(self.silent_factor_pct)),
            ("burst_window_secs", u64::from(self.burst_window_secs)),
            (
                "scan_min_destinations",
                u64::from(self.scan_min_destinations),
            ),
            ("ddos_min_pps", u64::from(self.ddos_min_pps)),
            ("dns_min_qps", u64::from(self.dns_min_qps)),
            ("travel_max_kmh", u64::from(self.travel_max_kmh)),
            ("overload_window_secs", u64::from(self.overload_window_secs)),
            ("overload_factor", u64::from(self.overload_factor)),
            ("cohort_factor_pct", u64::from(self.cohort_factor_pct)),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.flap_starts as usize > super::state::STARTS {
            return Err(format!(
                "flap_starts must be at most {}",
                super::state::STARTS
            ));
        }
        if self.volume_factor_pct <= 100 {
            return Err("volume_factor_pct must be above 100".into());
        }
        if self.scan_unanswered_pct > 100 || self.ddos_target_share_pct > 100 {
            return Err("percentages must be at most 100".into());
        }
        if !(8..=24).contains(&self.known_service_prefix_v4) {
            return Err(
                "known_service_prefix_v4 must be 8 to 24 (the network inside it is the /24)".into(),
            );
        }
        if !(16..=48).contains(&self.known_service_prefix_v6) {
            return Err(
                "known_service_prefix_v6 must be 16 to 48 (the network inside it is the /48)"
                    .into(),
            );
        }
        if self.known_service_min_networks as usize > super::group::SERVICE_NETWORKS {
            return Err(format!(
                "known_service_min_networks must be at most {}",
                super::group::SERVICE_NETWORKS
            ));
        }
        if self.burst_window_secs > 3_600 {
            return Err("burst_window_secs must be at most 3600".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_service_knobs_are_checked() {
        let ok = DetectOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let off = DetectOptions {
            known_service_min_networks: 0,
            ..ok
        };
        assert_eq!(off.validate(), Ok(()));
        for bad in [
            DetectOptions {
                known_service_prefix_v4: 25,
                ..ok
            },
            DetectOptions {
                known_service_prefix_v4: 4,
                ..ok
            },
            DetectOptions {
                known_service_prefix_v6: 64,
                ..ok
            },
            DetectOptions {
                known_service_min_networks: 5,
                ..ok
            },
        ] {
            let e = bad.validate().expect_err("rejected");
            assert!(e.starts_with("known_service_"), "{e}");
        }
    }
}
