//! Where devices are: visited networks, a shared cell plan, time zones.
//!
//! The fleet's SIMs are global IoT SIMs (home 901-70) that are always roaming, so the
//! serving network differs from the home network and changes when a tracker crosses a
//! border. The cell plan is a pure function of (country, operator, region, cell) so that
//! devices in the same place report the same cell, as they would in a real network.

use std::net::Ipv4Addr;

use rand::Rng;
use simguard_radius::tgpp::{MsTimeZone, Plmn, RatType, UserLocationInfo};

pub(crate) const HOME_MCC: u16 = 901;
pub(crate) const HOME_MNC: u16 = 70;
pub(crate) const HOME_MNC_DIGITS: u8 = 2;
pub(crate) const HOME: &str = "90170";

pub(crate) const REGIONS: u8 = 64;
pub(crate) const CELLS_PER_REGION: u8 = 48;

pub(crate) struct Country {
    pub iso: &'static str,
    pub mcc: u16,
    /// Two-digit MNCs of the roaming partners in that country.
    pub mncs: [u16; 3],
    pub utc_offset_minutes: i16,
    /// Indices into COUNTRIES reachable by land (or tunnel) from here.
    pub neighbours: &'static [u8],
    /// Share of static devices installed in this country.
    pub static_weight: u32,
    /// Approximate centroid (latitude, longitude), for distances in labels.
    pub centroid: (f64, f64),
}

/// The countries a fleet's groups allow: where devices live and trackers drive (the
/// first eight), plus Portugal and Greece, which only impossible travel visits.
pub const ALLOWED_COUNTRIES: [&str; 10] =
    ["DE", "NL", "BE", "FR", "PL", "AT", "CZ", "GB", "PT", "GR"];

/// Indices of countries that only scenarios send devices to (weight 0, no land
/// neighbours in the plan, so ordinary movement never reaches or leaves them).
pub(crate) const CH: u8 = 8;
pub(crate) const UA: u8 = 9;
pub(crate) const PT: u8 = 10;
pub(crate) const GR: u8 = 11;

pub(crate) static COUNTRIES: [Country; 12] = [
    Country {
        iso: "DE",
        mcc: 262,
        mncs: [1, 2, 3],
        utc_offset_minutes: 60,
        neighbours: &[1, 2, 3, 4, 5, 6],
        static_weight: 30,
        centroid: (51.2, 10.4),
    },
    Country {
        iso: "NL",
        mcc: 204,
        mncs: [4, 8, 16],
        utc_offset_minutes: 60,
        neighbours: &[0, 2],
        static_weight: 10,
        centroid: (52.1, 5.3),
    },
    Country {
        iso: "BE",
        mcc: 206,
        mncs: [1, 10, 20],
        utc_offset_minutes: 60,
        neighbours: &[1, 0, 3],
        static_weight: 5,
        centroid: (50.6, 4.6),
    },
    Country {
        iso: "FR",
        mcc: 208,
        mncs: [1, 10, 20],
        utc_offset_minutes: 60,
        neighbours: &[2, 0, 7],
        static_weight: 15,
        centroid: (46.6, 2.4),
    },
    Country {
        iso: "PL",
        mcc: 260,
        mncs: [1, 2, 3],
        utc_offset_minutes: 60,
        neighbours: &[0, 6],
        static_weight: 10,
        centroid: (52.1, 19.4),
    },
    Country {
        iso: "AT",
        mcc: 232,
        mncs: [1, 3, 5],
        utc_offset_minutes: 60,
        neighbours: &[0, 6],
        static_weight: 5,
        centroid: (47.6, 14.1),
    },
    Country {
        iso: "CZ",
        mcc: 230,
        mncs: [1, 2, 3],
        utc_offset_minutes: 60,
        neighbours: &[0, 4, 5],
        static_weight: 5,
        centroid: (49.8, 15.5),
    },
    Country {
        iso: "GB",
        mcc: 234,
        mncs: [10, 15, 30],
        utc_offset_minutes: 0,
        neighbours: &[3],
        static_weight: 20,
        centroid: (54.0, -2.5),
    },
    // Scenario-only countries from here on.
    Country {
        iso: "CH",
        mcc: 228,
        mncs: [1, 2, 3],
        utc_offset_minutes: 60,
        neighbours: &[],
        static_weight: 0,
        centroid: (46.8, 8.2),
    },
    Country {
        iso: "UA",
        mcc: 255,
        mncs: [1, 3, 6],
        utc_offset_minutes: 120,
        neighbours: &[],
        static_weight: 0,
        centroid: (49.0, 31.4),
    },
    Country {
        iso: "PT",
        mcc: 268,
        mncs: [1, 3, 6],
        utc_offset_minutes: 0,
        neighbours: &[],
        static_weight: 0,
        centroid: (39.6, -8.0),
    },
    Country {
        iso: "GR",
        mcc: 202,
        mncs: [1, 5, 10],
        utc_offset_minutes: 120,
        neighbours: &[],
        static_weight: 0,
        centroid: (39.1, 22.0),
    },
];

/// FNV-1a over a few bytes: a stable jitter for the cell plan.
fn plan_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Great-circle distance between two countries' centroids, km.
pub(crate) fn distance_km(a: u8, b: u8) -> f64 {
    let (p, q) = (
        COUNTRIES[usize::from(a) % COUNTRIES.len()].centroid,
        COUNTRIES[usize::from(b) % COUNTRIES.len()].centroid,
    );
    let (la1, lo1, la2, lo2) = (
        p.0.to_radians(),
        p.1.to_radians(),
        q.0.to_radians(),
        q.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().asin()
}

pub(crate) fn home_plmn() -> Option<Plmn> {
    Plmn::new(HOME_MCC, HOME_MNC, HOME_MNC_DIGITS)
}

/// One cell of the simulated networks, with where it is: what `simguard
/// demo` imports into the cell table so that its devices land on a map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedCell {
    pub mcc: u16,
    pub mnc: u16,
    /// LAC (2G/3G) or TAC (LTE): the plan uses one number for both.
    pub area: u32,
    /// The ECI when `lte`, else the CI (which 3G SAIs carry as SAC).
    pub cell: u64,
    pub lte: bool,
    pub lat: f64,
    pub lon: f64,
    /// Metres.
    pub range_m: u32,
}

/// How far a simulated cell serves, m.
pub const PLANNED_RANGE_M: u32 = 2_000;

/// Every cell a simulated device can report, two per place: the E-UTRAN
/// cell (TAC, ECI) of its TAI+ECGI, and the 2G/3G cell (LAC, CI) of its CGI
/// or SAI. 12 countries x 3 operators x 64 regions x 48 cells.
pub fn cell_plan() -> impl Iterator<Item = PlannedCell> {
    (0..COUNTRIES.len() as u8).flat_map(|country| {
        (0..3u8).flat_map(move |operator| {
            (0..REGIONS).flat_map(move |region| {
                (0..CELLS_PER_REGION).flat_map(move |cell| {
                    let loc = Location {
                        country,
                        operator,
                        region,
                        cell,
                    };
                    let c = loc.c();
                    let (lat, lon) = loc.position();
                    let mnc = c.mncs[usize::from(operator) % 3];
                    let planned = move |lte: bool, cell: u64| PlannedCell {
                        mcc: c.mcc,
                        mnc,
                        area: u32::from(loc.tac()),
                        cell,
                        lte,
                        lat,
                        lon,
                        range_m: PLANNED_RANGE_M,
                    };
                    [
                        planned(true, u64::from(loc.eci())),
                        planned(false, u64::from(loc.ci())),
                    ]
                })
            })
        })
    })
}

/// A device's serving cell, as indices into the cell plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub country: u8,
    pub operator: u8,
    pub region: u8,
    pub cell: u8,
}

impl Location {
    pub fn random_static<R: Rng>(rng: &mut R) -> Location {
        let total: u32 = COUNTRIES.iter().map(|c| c.static_weight).sum();
        let mut x = rng.gen_range(0..total);
        let mut country = 0u8;
        for (i, c) in COUNTRIES.iter().enumerate() {
            if x < c.static_weight {
                country = i as u8;
                break;
            }
            x -= c.static_weight;
        }
        Location::random_in(rng, country)
    }

    pub fn random_in<R: Rng>(rng: &mut R, country: u8) -> Location {
        Location {
            country,
            operator: rng.gen_range(0..3),
            region: rng.gen_range(0..REGIONS),
            cell: rng.gen_range(0..CELLS_PER_REGION),
        }
    }

    pub fn country(&self) -> &'static Country {
        self.c()
    }

    /// Where the cell is (latitude, longitude), a pure function of the
    /// indices: the 64 regions of a country on an 8 x 8 grid of about
    /// 180 x 170 km around its centroid (each operator's shifted a little,
    /// each region jittered), a region's 16 sites on a 4 x 4 grid, and a
    /// site's three sectors 200 m apart. Not geography: some regions of
    /// coastal countries are at sea.
    pub fn position(&self) -> (f64, f64) {
        let (clat, clon) = self.c().centroid;
        let (row, col) = (f64::from(self.region / 8), f64::from(self.region % 8));
        let h = plan_hash(&[self.country, self.operator, self.region]);
        let jitter = |bits: u64| ((bits & 0xffff) as f64 / 65_535.0 - 0.5) * 0.08;
        let op = f64::from(self.operator % 3) * 0.03;
        let mut lat = clat + (row - 3.5) * 0.2 + op + jitter(h);
        let mut lon = clon + (col - 3.5) * 0.3 + op + jitter(h >> 16);
        let site = self.cell / 3;
        lat += (f64::from(site / 4) - 1.5) * 0.045;
        lon += (f64::from(site % 4) - 1.5) * 0.07;
        let sector = f64::from(self.cell % 3) * std::f64::consts::TAU / 3.0;
        lat += 0.0018 * sector.cos();
        lon += 0.0025 * sector.sin();
        (lat, lon)
    }

    /// The cell as text, "MCC-MNC-TAC-ECI" (decimal) as the E-UTRAN ULI carries it.
    pub fn cell_text(&self) -> String {
        let c = self.c();
        format!(
            "{:03}-{:02}-{}-{}",
            c.mcc,
            c.mncs[usize::from(self.operator) % 3],
            self.tac(),
            self.eci()
        )
    }

    /// The serving network as "MCC-MNC".
    pub fn network_text(&self) -> String {
        let c = self.c();
        format!("{:03}-{:02}", c.mcc, c.mncs[usize::from(self.operator) % 3])
    }

    fn c(&self) -> &'static Country {
        &COUNTRIES[usize::from(self.country) % COUNTRIES.len()]
    }

    pub fn plmn(&self) -> Option<Plmn> {
        let c = self.c();
        Plmn::new(c.mcc, c.mncs[usize::from(self.operator) % 3], 2)
    }

    /// The serving node's control-plane address (SGSN or SGW), from the documentation
    /// range: it is only ever written into attributes, never contacted.
    pub fn sgsn_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 1 + self.country * 3 + self.operator % 3)
    }

    pub fn tac(&self) -> u16 {
        0x1000 * (u16::from(self.operator % 3) + 1)
            + u16::from(self.region) * 4
            + u16::from(self.cell) / 12
    }

    pub fn eci(&self) -> u32 {
        // 20-bit eNodeB id and 8-bit cell id: three sectors per site.
        let enb = 10_000 + u32::from(self.region) * 16 + u32::from(self.cell) / 3;
        (enb << 8) | (u32::from(self.cell) % 3 + 1)
    }

    pub fn ci(&self) -> u16 {
        1_000 + u16::from(self.region) * 64 + u16::from(self.cell)
    }

    /// The User-Location-Info that the RAT carries: CGI on 2G, SAI on 3G,
    /// TAI+ECGI on every E-UTRAN flavour.
    pub fn uli(&self, rat: RatType) -> Option<UserLocationInfo> {
        let plmn = self.plmn()?;
        let lac = self.tac();
        Some(match rat {
            RatType::GERAN => UserLocationInfo::Cgi {
                plmn,
                lac,
                ci: self.ci(),
            },
            RatType::UTRAN => UserLocationInfo::Sai {
                plmn,
                lac,
                sac: self.ci(),
            },
            _ => UserLocationInfo::TaiEcgi {
                tai_plmn: plmn,
                tac: self.tac(),
                ecgi_plmn: plmn,
                eci: self.eci(),
            },
        })
    }

    /// A small step: another sector or a neighbouring site in the same region,
    /// sometimes the next region.
    pub fn step<R: Rng>(&mut self, rng: &mut R) {
        if rng.gen_ratio(1, 5) {
            let up = rng.gen_bool(0.5);
            self.region = match (up, self.region) {
                (true, r) if r + 1 < REGIONS => r + 1,
                (false, r) if r > 0 => r - 1,
                (_, 0) => 1,
                (_, r) => r - 1,
            };
            self.cell = rng.gen_range(0..CELLS_PER_REGION);
        } else {
            let d = rng.gen_range(1..=3u8);
            self.cell = (self.cell + d) % CELLS_PER_REGION;
        }
    }

    /// Cross into a neighbouring country, attaching to one of its operators.
    pub fn cross_border<R: Rng>(&mut self, rng: &mut R) {
        let n = self.c().neighbours;
        if n.is_empty() {
            // Scenario-only countries lead nowhere: stay, on another cell.
            self.cell = rng.gen_range(0..CELLS_PER_REGION);
            return;
        }
        let next = n[rng.gen_range(0..n.len())];
        *self = Location::random_in(rng, next);
    }

    pub fn timezone(&self, unix_secs: u64) -> MsTimeZone {
        let dst = eu_summer_time(unix_secs);
        MsTimeZone {
            // TS 29.274 8.44: the offset already includes the DST adjustment.
            offset_minutes: self.c().utc_offset_minutes + if dst { 60 } else { 0 },
            dst_hours: u8::from(dst),
        }
    }
}

/// (year, month, day) of a day number since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of_days(z: i64) -> i64 {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

fn last_sunday(y: i64, m: u32, last_day: u32) -> i64 {
    let d = days_from_civil(y, m, last_day);
    // 1970-01-01 was a Thursday: (days + 4) % 7 == 0 on Sundays.
    d - (d + 4).rem_euclid(7)
}

/// EU rule, which the UK shares: summer time from 01:00 UTC on the last Sunday of
/// March to 01:00 UTC on the last Sunday of October.
pub(crate) fn eu_summer_time(unix_secs: u64) -> bool {
    let t = unix_secs as i64;
    let y = year_of_days(t.div_euclid(86_400));
    let start = last_sunday(y, 3, 31) * 86_400 + 3_600;
    let end = last_sunday(y, 10, 31) * 86_400 + 3_600;
    t >= start && t < end
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_cell_plan_has_every_reported_cell_once_near_its_country() {
        let plan: Vec<PlannedCell> = cell_plan().collect();
        assert_eq!(plan.len(), 12 * 3 * 64 * 48 * 2);
        let keys: std::collections::HashSet<(u16, u16, u32, u64)> = plan
            .iter()
            .map(|c| (c.mcc, c.mnc, c.area, c.cell))
            .collect();
        assert_eq!(keys.len(), plan.len(), "keys are unique");
        // What a device reports is in the plan, at the device's position.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let loc = Location::random_static(&mut rng);
            let c = loc.country();
            let mnc = c.mncs[usize::from(loc.operator) % 3];
            let lte = (c.mcc, mnc, u32::from(loc.tac()), u64::from(loc.eci()));
            let gsm = (c.mcc, mnc, u32::from(loc.tac()), u64::from(loc.ci()));
            assert!(keys.contains(&lte) && keys.contains(&gsm));
            let (lat, lon) = loc.position();
            assert!((lat - c.centroid.0).abs() < 1.0, "{loc:?}");
            assert!((lon - c.centroid.1).abs() < 1.5, "{loc:?}");
        }
    }

    #[test]
    fn dst_switch_dates() {
        // 2024: 31 March 01:00 UTC to 27 October 01:00 UTC.
        assert!(!eu_summer_time(1_711_846_799));
        assert!(eu_summer_time(1_711_846_800));
        assert!(eu_summer_time(1_729_990_799));
        assert!(!eu_summer_time(1_729_990_800));
        assert!(!eu_summer_time(1_704_067_200)); // 2024-01-01
        assert!(eu_summer_time(1_719_792_000)); // 2024-07-01
    }

    #[test]
    fn cell_ids_fit_their_fields() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..10_000 {
            let mut l = Location::random_static(&mut rng);
            l.step(&mut rng);
            assert!(l.region < REGIONS && l.cell < CELLS_PER_REGION);
            assert!(l.eci() < 1 << 28);
            assert!(l.plmn().is_some());
            if rng.gen_ratio(1, 10) {
                let before = l.country;
                l.cross_border(&mut rng);
                assert!(COUNTRIES[usize::from(before)]
                    .neighbours
                    .contains(&l.country));
            }
        }
    }

    #[test]
    fn neighbours_are_symmetric() {
        for (i, c) in COUNTRIES.iter().enumerate() {
            for n in c.neighbours {
                assert!(
                    COUNTRIES[usize::from(*n)].neighbours.contains(&(i as u8)),
                    "{} -> {}",
                    c.iso,
                    n
                );
            }
        }
    }
}
