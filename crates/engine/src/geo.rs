//! Country positions for distance checks (impossible travel) and for
//! locating a device whose cell is unknown: one point per country, on its
//! largest land mass, and how far from it a device may be.
//!
//! Derived from the country centroids of github.com/gavinr/world-countries-centroids
//! (MIT licence, Gavin Rehkemper; from Esri World Countries boundaries),
//! rounded to 0.01 degrees. Sorted by ISO 3166-1 alpha-2 code for binary search.

/// (ISO alpha-2, latitude, longitude) in degrees.
static CENTROIDS: &[(&str, f64, f64)] = &[
    ("AD", 42.55, 1.58),
    ("AE", 24.18, 54.28),
    ("AF", 34.13, 66.59),
    ("AG", 17.07, -61.79),
    ("AI", 18.22, -63.06),
    ("AL", 41.14, 20.06),
    ("AM", 40.18, 45.05),
    ("AO", -12.17, 17.65),
    ("AQ", -77.17, -177.56),
    ("AR", -35.70, -64.53),
    ("AS", -14.31, -170.70),
    ("AT", 47.63, 13.80),
    ("AU", -25.70, 134.02),
    ("AW", 12.52, -69.98),
    ("AZ", 40.39, 48.63),
    ("BA", 44.14, 17.83),
    ("BB", 13.18, -59.56),
    ("BD", 23.67, 90.43),
    ("BE", 50.62, 4.68),
    ("BF", 12.11, -1.69),
    ("BG", 42.82, 25.25),
    ("BH", 26.05, 50.54),
    ("BI", -3.26, 29.89),
    ("BJ", 9.50, 2.31),
    ("BL", 17.91, -62.83),
    ("BM", 32.32, -64.75),
    ("BN", 4.54, 114.64),
    ("BO", -16.73, -64.45),
    ("BQ", 12.18, -68.29),
    ("BR", -11.52, -54.36),
    ("BS", 24.72, -78.07),
    ("BT", 27.42, 90.47),
    ("BV", -54.42, 3.41),
    ("BW", -22.24, 23.86),
    ("BY", 53.47, 27.96),
    ("BZ", 17.24, -88.68),
    ("CA", 57.55, -98.42),
    ("CC", -12.17, 96.84),
    ("CD", -3.34, 23.42),
    ("CF", 6.33, 20.52),
    ("CG", -0.73, 14.88),
    ("CH", 46.74, 8.29),
    ("CI", 7.54, -5.57),
    ("CK", -21.22, -159.79),
    ("CL", -37.83, -70.77),
    ("CM", 6.29, 12.95),
    ("CN", 38.07, 104.69),
    ("CO", 4.19, -72.64),
    ("CR", 9.86, -84.15),
    ("CU", 21.48, -79.70),
    ("CV", 15.08, -23.63),
    ("CW", 12.20, -68.97),
    ("CX", -10.45, 105.70),
    ("CY", 35.12, 33.38),
    ("CZ", 49.75, 15.38),
    ("DE", 51.08, 10.43),
    ("DJ", 11.75, 42.61),
    ("DK", 56.00, 9.38),
    ("DM", 15.43, -61.36),
    ("DO", 18.78, -70.43),
    ("DZ", 28.35, 2.66),
    ("EC", -1.56, -78.46),
    ("EE", 58.65, 25.92),
    ("EG", 26.61, 30.24),
    ("ER", 15.01, 39.27),
    ("ES", 40.37, -3.65),
    ("ET", 8.73, 39.91),
    ("FI", 65.02, 25.66),
    ("FJ", -17.82, 177.98),
    ("FK", -51.76, -58.75),
    ("FM", 6.88, 158.23),
    ("FO", 62.13, -6.98),
    ("FR", 46.64, 2.19),
    ("GA", -0.63, 11.84),
    ("GB", 53.98, -2.85),
    ("GD", 12.11, -61.68),
    ("GE", 42.18, 43.38),
    ("GF", 3.86, -53.32),
    ("GG", 49.46, -2.58),
    ("GH", 7.95, -1.22),
    ("GI", 36.14, -5.35),
    ("GL", 74.17, -42.08),
    ("GM", 13.43, -15.38),
    ("GN", 10.26, -10.99),
    ("GP", 16.24, -61.54),
    ("GQ", 1.60, 10.43),
    ("GR", 39.42, 23.11),
    ("GS", -54.38, -36.78),
    ("GT", 15.82, -90.31),
    ("GU", 13.45, 144.78),
    ("GW", 11.98, -14.98),
    ("GY", 4.68, -58.91),
    ("HM", -53.08, 73.49),
    ("HN", 14.74, -86.49),
    ("HR", 44.91, 16.63),
    ("HT", 18.88, -72.89),
    ("HU", 47.23, 19.40),
    ("ID", 0.16, 113.97),
    ("IE", 53.30, -8.24),
    ("IL", 31.51, 35.03),
    ("IM", 54.23, -4.53),
    ("IN", 23.59, 81.17),
    ("IO", -7.32, 72.44),
    ("IQ", 33.11, 43.83),
    ("IR", 32.91, 54.24),
    ("IS", 65.12, -19.06),
    ("IT", 42.98, 12.76),
    ("JE", 49.22, -2.13),
    ("JM", 18.12, -77.30),
    ("JO", 31.39, 36.96),
    ("JP", 36.77, 137.47),
    ("KE", 0.69, 37.95),
    ("KG", 41.36, 74.18),
    ("KH", 12.70, 105.04),
    ("KI", 1.87, -157.39),
    ("KM", -11.66, 43.35),
    ("KN", 17.31, -62.75),
    ("KP", 40.19, 127.34),
    ("KR", 36.40, 127.76),
    ("KW", 29.28, 47.56),
    ("KY", 19.31, -81.25),
    ("KZ", 47.64, 66.38),
    ("LA", 18.12, 103.76),
    ("LB", 33.91, 35.90),
    ("LC", 13.90, -60.97),
    ("LI", 47.15, 9.55),
    ("LK", 7.70, 80.67),
    ("LR", 6.52, -9.26),
    ("LS", -29.60, 28.24),
    ("LT", 55.29, 23.95),
    ("LU", 49.78, 6.10),
    ("LV", 56.81, 24.69),
    ("LY", 27.20, 17.91),
    ("MA", 28.69, -8.82),
    ("MC", 43.75, 7.41),
    ("MD", 47.07, 28.39),
    ("ME", 42.74, 19.30),
    ("MF", 18.08, -63.07),
    ("MG", -19.04, 46.68),
    ("MH", 7.31, 168.72),
    ("MK", 41.59, 21.71),
    ("ML", 17.17, -4.35),
    ("MM", 19.90, 97.09),
    ("MN", 47.09, 103.40),
    ("MP", 15.18, 145.74),
    ("MQ", 14.64, -61.01),
    ("MR", 20.47, -10.50),
    ("MS", 16.74, -62.19),
    ("MT", 35.89, 14.44),
    ("MU", -20.28, 57.56),
    ("MV", -0.61, 73.10),
    ("MW", -13.13, 34.23),
    ("MX", 23.87, -101.55),
    ("MY", 3.67, 114.63),
    ("MZ", -17.53, 35.21),
    ("NA", -21.91, 18.16),
    ("NC", -21.33, 165.51),
    ("NE", 17.08, 8.87),
    ("NF", -29.04, 167.95),
    ("NG", 9.61, 8.15),
    ("NI", 12.89, -85.02),
    ("NL", 52.13, 5.55),
    ("NO", 64.98, 16.67),
    ("NP", 28.30, 84.13),
    ("NR", -0.52, 166.93),
    ("NU", -19.05, -169.87),
    ("NZ", -43.83, 170.69),
    ("OM", 20.72, 55.84),
    ("PA", 8.44, -80.14),
    ("PE", -8.52, -74.11),
    ("PF", -17.67, -149.40),
    ("PG", -7.16, 144.83),
    ("PH", 15.59, 121.82),
    ("PK", 30.12, 69.09),
    ("PL", 52.07, 19.44),
    ("PM", 46.95, -56.32),
    ("PN", -24.37, -128.31),
    ("PR", 18.22, -66.49),
    ("PS", 31.93, 35.24),
    ("PT", 39.68, -7.93),
    ("PW", 7.53, 134.58),
    ("PY", -23.42, -58.39),
    ("QA", 25.32, 51.20),
    ("RE", -21.12, 55.54),
    ("RO", 45.82, 25.09),
    ("RS", 44.03, 20.86),
    ("RU", 59.04, 98.67),
    ("RW", -2.01, 29.92),
    ("SA", 24.14, 44.60),
    ("SB", -9.61, 160.16),
    ("SC", -4.66, 55.47),
    ("SD", 15.67, 29.95),
    ("SE", 62.73, 17.06),
    ("SG", 1.35, 103.81),
    ("SH", -15.96, -5.72),
    ("SI", 46.14, 14.89),
    ("SJ", 78.57, 16.04),
    ("SK", 48.70, 19.58),
    ("SL", 8.56, -11.79),
    ("SM", 43.94, 12.46),
    ("SN", 14.23, -14.61),
    ("SO", 6.52, 45.40),
    ("SR", 4.10, -55.86),
    ("SS", 7.66, 30.39),
    ("ST", 0.23, 6.61),
    ("SV", 13.76, -88.86),
    ("SX", 18.04, -63.07),
    ("SY", 35.10, 38.51),
    ("SZ", -26.56, 31.51),
    ("TC", 21.80, -71.74),
    ("TD", 15.28, 18.43),
    ("TF", -17.06, 42.74),
    ("TG", 8.66, 0.90),
    ("TH", 13.66, 101.09),
    ("TJ", 38.57, 70.94),
    ("TK", -9.20, -171.85),
    ("TL", -8.81, 125.95),
    ("TM", 39.06, 58.46),
    ("TN", 34.09, 9.66),
    ("TO", -21.16, -175.20),
    ("TR", 38.93, 35.57),
    ("TT", 10.42, -61.37),
    ("TV", -8.51, 179.22),
    ("TZ", -6.36, 34.82),
    ("UA", 48.66, 31.27),
    ("UG", 1.28, 32.34),
    ("UM", 19.30, 166.64),
    ("US", 38.82, -96.33),
    ("UY", -32.78, -56.02),
    ("UZ", 41.49, 63.85),
    ("VA", 41.90, 12.45),
    ("VC", 13.25, -61.19),
    ("VE", 7.15, -66.36),
    ("VG", 18.42, -64.62),
    ("VI", 17.74, -64.76),
    ("VN", 16.52, 105.91),
    ("VU", -15.19, 166.85),
    ("WF", -14.28, -178.13),
    ("WS", -13.63, -172.44),
    ("YE", 16.00, 47.47),
    ("YT", -12.82, 45.13),
    ("ZA", -28.55, 24.75),
    ("ZM", -13.16, 27.76),
    ("ZW", -18.93, 29.72),
];

/// The centroid (latitude, longitude) of a country by ISO alpha-2 code.
pub fn centroid(iso: &str) -> Option<(f64, f64)> {
    CENTROIDS
        .binary_search_by(|(c, _, _)| (*c).cmp(iso))
        .ok()
        .map(|i| (CENTROIDS[i].1, CENTROIDS[i].2))
}

/// Land area of the countries larger than the default radius covers, in
/// thousands of km², sorted by ISO code. Figures of the CIA World Factbook
/// (public domain), rounded.
static LARGE_AREAS: &[(&str, u32)] = &[
    ("AO", 1247),
    ("AR", 2780),
    ("AU", 7741),
    ("BO", 1099),
    ("BR", 8516),
    ("CA", 9985),
    ("CD", 2345),
    ("CN", 9597),
    ("CO", 1139),
    ("DZ", 2382),
    ("EG", 1001),
    ("ET", 1104),
    ("GL", 2166),
    ("ID", 1905),
    ("IN", 3287),
    ("IR", 1648),
    ("KZ", 2725),
    ("LY", 1760),
    ("ML", 1240),
    ("MN", 1564),
    ("MR", 1031),
    ("MX", 1964),
    ("MZ", 799),
    ("NA", 824),
    ("NE", 1267),
    ("NG", 924),
    ("PE", 1285),
    ("PK", 796),
    ("RU", 17098),
    ("SA", 2150),
    ("SD", 1861),
    ("TD", 1284),
    ("TZ", 947),
    ("US", 9834),
    ("VE", 912),
    ("ZA", 1219),
];

/// The default country radius, km: the radius of a disc of 785,000 km²,
/// which covers every country not in `LARGE_AREAS` (Turkey, France, Spain
/// and everything smaller). Overstating the uncertainty of a small country
/// is safe; understating a large one's would not be.
pub const DEFAULT_COUNTRY_RADIUS_KM: f64 = 500.0;

/// How far from its centroid a device known only to be in country `iso` may
/// be, km: the radius of a disc with the country's area, at least
/// [`DEFAULT_COUNTRY_RADIUS_KM`]. An order of magnitude, not a bound: a long
/// country (Chile, Norway) reaches further.
pub fn country_radius_km(iso: &str) -> f64 {
    LARGE_AREAS
        .binary_search_by(|(c, _)| (*c).cmp(iso))
        .ok()
        .map(|i| (f64::from(LARGE_AREAS[i].1) * 1000.0 / std::f64::consts::PI).sqrt())
        .map_or(DEFAULT_COUNTRY_RADIUS_KM, |r| {
            r.max(DEFAULT_COUNTRY_RADIUS_KM)
        })
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_distances_are_plausible() {
        assert!(CENTROIDS.windows(2).all(|w| w[0].0 < w[1].0));
        let de = centroid("DE").unwrap();
        let fr = centroid("FR").unwrap();
        let br = centroid("BR").unwrap();
        let d = distance_km(de, fr);
        assert!((300.0..1000.0).contains(&d), "DE-FR {d}");
        let d = distance_km(de, br);
        assert!((8500.0..11000.0).contains(&d), "DE-BR {d}");
        assert_eq!(centroid("XX"), None);
        assert_eq!(distance_km(de, de), 0.0);
    }

    #[test]
    fn country_radius_is_the_equal_area_disc_with_a_floor() {
        assert!(LARGE_AREAS.windows(2).all(|w| w[0].0 < w[1].0));
        // Russia: sqrt(17,098,000 / pi) = 2332.9 km.
        assert!((country_radius_km("RU") - 2332.9).abs() < 0.5);
        // India: sqrt(3,287,000 / pi) = 1022.9 km.
        assert!((country_radius_km("IN") - 1022.9).abs() < 0.5);
        // Germany (357,000 km², a 337 km disc) gets the floor.
        assert_eq!(country_radius_km("DE"), DEFAULT_COUNTRY_RADIUS_KM);
        // Pakistan's disc (503 km) is just above it.
        assert!(country_radius_km("PK") > DEFAULT_COUNTRY_RADIUS_KM);
        assert_eq!(country_radius_km("XX"), DEFAULT_COUNTRY_RADIUS_KM);
    }
}
