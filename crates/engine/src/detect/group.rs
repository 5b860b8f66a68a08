//! Per-group (cohort) detection state: what the group's devices normally
//! send, when, from which kinds of device, and to where. Bounded per group:
//! about 1.3 KB plus at most [`MAX_DESTINATIONS`] destinations,
//! [`MAX_SERVICES`] services of [`SERVICE_NETWORKS`] networks each (24
//! bytes apiece in a hash table of 8,192 buckets, about 200 KB when full) and
//! [`MAX_TACS`] TACs.

use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// Destinations a group remembers.
pub const MAX_DESTINATIONS: usize = 16_384;
/// Services (provider prefix, port, protocol) a group remembers. Past it,
/// new services are not remembered: their new addresses stay new
/// destinations, as they were before services were learned (fails safe).
pub const MAX_SERVICES: usize = 4_096;
/// Networks remembered per service: the most `known_service_min_networks`
/// may ask for (more would not change any answer).
pub const SERVICE_NETWORKS: usize = 4;
/// Device models (TACs) a group remembers.
pub const MAX_TACS: usize = 64;
/// Halve the histogram when it holds this many reports, so it follows change.
const HIST_DECAY_AT: u32 = 1 << 20;

/// Mean of quantized values by hour of day or day of week.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Bucket {
    pub sum: u64,
    pub n: u32,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct GroupDetect {
    /// Histogram of quantized uplink bytes per report across the group.
    hist: Vec<u32>,
    hist_total: u32,
    /// Seasonality: quantized volume by UTC hour of day and by day of week.
    hours: [Bucket; 24],
    weekdays: [Bucket; 7],
    /// Devices per TAC (first-seen TAC of each device).
    pub tacs: BTreeMap<u32, u32>,
    /// Destinations (remote /24, port, protocol) the group's devices used.
    pub destinations: Destinations,
    /// Services the group's devices completed TCP sessions with, keyed by
    /// (provider prefix, port, protocol), with the destination networks
    /// they were seen on: a cloud service that rotates its addresses shows
    /// up on several networks of its prefix (see `detect`).
    pub services: Services,
    /// Event time of the group's first attributed flow (0 = none yet).
    pub first_flow: i64,
    /// The 90th and 95th percentiles, recomputed when the histogram has
    /// grown by 1/64 since (kept in the snapshot, so a restored engine
    /// answers exactly as one that never stopped).
    cached: [u8; 2],
    cached_at: u32,
    /// Running totals of the hour buckets (their mean is the baseline the
    /// seasonal offsets are measured from).
    season_sum: u64,
    season_n: u64,
}

/// Hashing for keys that are already hashes (FNV-1a of a network or a
/// service key): every flow of a grouped device looks up both sets, and
/// SipHash cost more than the rest of the lookup. Keyed per process, so
/// that destinations an attacker picks cannot be made to collide; nothing
/// depends on iteration order (snapshots sort).
#[derive(Clone, Debug)]
pub struct KeyBuild(u64);

impl Default for KeyBuild {
    fn default() -> Self {
        KeyBuild(RandomState::new().hash_one(0x5167_u64))
    }
}

impl BuildHasher for KeyBuild {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
    fn finish(&self) -> u64 {
        crate::iptable::fmix64(self.0)
    }
}

/// A hash set that snapshots in sorted order, so that the same state always
/// encodes to the same bytes.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Destinations(pub HashSet<u64, KeyBuild>);

/// Services by key, with their networks; snapshots in key order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Services(pub HashMap<u64, ServiceNets, KeyBuild>);

impl std::ops::Deref for Services {
    type Target = HashMap<u64, ServiceNets, KeyBuild>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Services {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Serialize for Services {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: BTreeMap<u64, ServiceNets> = self.0.iter().map(|(k, v)| (*k, *v)).collect();
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Services {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: BTreeMap<u64, ServiceNets> = BTreeMap::deserialize(d)?;
        Ok(Services(v.into_iter().collect()))
    }
}

impl Serialize for Destinations {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<u64> = self.0.iter().copied().collect();
        v.sort_unstable();
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Destinations {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<u64> = Vec::deserialize(d)?;
        Ok(Destinations(v.into_iter().collect()))
    }
}

/// The destination networks (remote /24 or /48) one service was seen on,
/// as nonzero 32-bit fingerprints of their keys; 0 is an empty slot. A
/// fingerprint collision can only make a service look less spread than it
/// is, i.e. stricter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ServiceNets(pub [u32; SERVICE_NETWORKS]);

fn net_print(net: u64) -> u32 {
    ((net >> 32) as u32 ^ net as u32).max(1)
}

impl GroupDetect {
    pub fn observe_volume(&mut self, q: u8, time: i64) {
        if self.hist.len() != 256 {
            self.hist = vec![0; 256];
        }
        self.hist[usize::from(q)] += 1;
        self.hist_total += 1;
        if self.hist_total >= HIST_DECAY_AT {
            self.hist_total = 0;
            for c in &mut self.hist {
                *c /= 2;
                self.hist_total += *c;
            }
        }
        let (h, wd) = hour_and_weekday(time);
        for b in [&mut self.hours[h], &mut self.weekdays[wd]] {
            b.sum += u64::from(q);
            b.n += 1;
        }
        self.season_sum += u64::from(q);
        self.season_n += 1;
        let grown = self.hist_total.abs_diff(self.cached_at);
        if grown >= (self.hist_total / 64).max(16) || self.cached_at == 0 {
            self.cached = [
                self.quantile(90).unwrap_or(0),
                self.quantile(95).unwrap_or(0),
            ];
            self.cached_at = self.hist_total;
        }
    }

    /// The 90th percentile, as of the last refresh (cheap: read per report).
    pub fn p90(&self) -> Option<u8> {
        (self.cached_at > 0).then_some(self.cached[0])
    }

    /// The 95th percentile, as of the last refresh.
    pub fn p95(&self) -> Option<u8> {
        (self.cached_at > 0).then_some(self.cached[1])
    }

    pub fn reports(&self) -> u32 {
        self.hist_total
    }

    /// The quantized value below which `pct` percent of the group's reports lie.
    pub fn quantile(&self, pct: u32) -> Option<u8> {
        if self.hist_total == 0 {
            return None;
        }
        let want = (u64::from(self.hist_total) * u64::from(pct.min(100))).div_ceil(100);
        let mut seen = 0u64;
        for (q, &c) in self.hist.iter().enumerate() {
            seen += u64::from(c);
            if seen >= want.max(1) {
                return Some(q as u8);
            }
        }
        None
    }

    /// How much higher (in quantized steps) reports at this hour and weekday
    /// run than the group's average, where the data supports it: at least
    /// `min_n` reports in the bucket and a shift of at least half a doubling.
    pub fn seasonal_offset(&self, time: i64, min_n: u32) -> i32 {
        if self.season_n == 0 {
            return 0;
        }
        let mean = self.season_sum as f64 / self.season_n as f64;
        let (h, wd) = hour_and_weekday(time);
        let mut off = 0.0;
        for b in [self.hours[h], self.weekdays[wd]] {
            if b.n >= min_n {
                let d = b.sum as f64 / f64::from(b.n) - mean;
                if d.abs() >= 4.0 {
                    off += d;
                }
            }
        }
        off.round() as i32
    }

    /// Counts a device's model; bounded: past [`MAX_TACS`] models, new ones
    /// are not remembered (they then look foreign, which they are).
    pub fn add_tac(&mut self, tac: u32) {
        if let Some(c) = self.tacs.get_mut(&tac) {
            *c += 1;
        } else if self.tacs.len() < MAX_TACS {
            self.tacs.insert(tac, 1);
        }
    }

    pub fn learn_destination(&mut self, key: u64) {
        if self.destinations.0.len() < MAX_DESTINATIONS {
            self.destinations.0.insert(key);
        }
    }

    /// Remembers that the group completed a TCP session with `service` on
    /// destination network `net`. Bounded: at most [`MAX_SERVICES`]
    /// services and [`SERVICE_NETWORKS`] networks each; the first ones
    /// seen are kept.
    pub fn learn_service(&mut self, service: u64, net: u64) {
        let print = net_print(net);
        let full = self.services.len() >= MAX_SERVICES;
        let nets = match self.services.get_mut(&service) {
            Some(n) => n,
            None if full => return,
            None => self.services.entry(service).or_default(),
        };
        if nets.0.contains(&print) {
            return;
        }
        if let Some(slot) = nets.0.iter_mut().find(|s| **s == 0) {
            *slot = print;
        }
    }

    /// On how many destination networks other than `net` the group has
    /// completed TCP sessions with `service`.
    pub fn service_networks_besides(&self, service: u64, net: u64) -> usize {
        let print = net_print(net);
        self.services
            .get(&service)
            .map_or(0, |n| n.0.iter().filter(|&&s| s != 0 && s != print).count())
    }
}

/// UTC hour of day and day of week (0 = Monday).
pub fn hour_and_weekday(time: i64) -> (usize, usize) {
    let hours = time.div_euclid(3_600_000);
    let h = hours.rem_euclid(24) as usize;
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let wd = (hours.div_euclid(24) + 3).rem_euclid(7) as usize;
    (h, wd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_from_the_histogram() {
        let mut g = GroupDetect::default();
        assert_eq!(g.quantile(50), None);
        for q in 0..100u8 {
            g.observe_volume(q + 50, 0);
        }
        assert_eq!(g.reports(), 100);
        assert_eq!(g.quantile(50), Some(99));
        assert_eq!(g.quantile(100), Some(149));
        assert_eq!(g.quantile(1), Some(50));
    }

    #[test]
    fn seasonality_only_where_the_data_supports_it() {
        let mut g = GroupDetect::default();
        let day = 86_400_000i64;
        // 20 days: hour 3 runs 24 steps (8x) higher than the other hours.
        for d in 0..20 {
            for h in 0..24 {
                let q = if h == 3 { 104 } else { 80 };
                g.observe_volume(q, d * day + h * 3_600_000);
            }
        }
        let at3 = 19 * day + 3 * 3_600_000;
        let at5 = 19 * day + 5 * 3_600_000;
        assert!(
            g.seasonal_offset(at3, 10) >= 20,
            "{}",
            g.seasonal_offset(at3, 10)
        );
        assert_eq!(g.seasonal_offset(at5, 10), 0);
        assert_eq!(
            g.seasonal_offset(at3, 1_000),
            0,
            "too few reports per bucket"
        );
    }

    #[test]
    fn services_count_distinct_networks_and_stay_bounded() {
        let mut g = GroupDetect::default();
        assert_eq!(g.service_networks_besides(7, 100), 0);
        g.learn_service(7, 100);
        g.learn_service(7, 100);
        g.learn_service(7, 200);
        assert_eq!(g.service_networks_besides(7, 300), 2);
        // The network asked about is not evidence for itself.
        assert_eq!(g.service_networks_besides(7, 100), 1);
        assert_eq!(g.service_networks_besides(8, 300), 0);
        for n in 0..10 {
            g.learn_service(7, 1_000 + n);
        }
        assert_eq!(
            g.services[&7].0.iter().filter(|&&s| s != 0).count(),
            SERVICE_NETWORKS
        );
        for s in 0..(MAX_SERVICES as u64 + 10) {
            g.learn_service(1_000 + s, 1);
        }
        assert_eq!(g.services.len(), MAX_SERVICES);
    }

    #[test]
    fn weekday_of_a_known_date() {
        // 2026-11-22 is a Sunday.
        let t = 1_795_305_600_000i64;
        assert_eq!(hour_and_weekday(t), (0, 6));
    }
}
