//! ITU-T E.212 Mobile Country Codes (MCC) -> country.
//!
//! An embedded, dependency-free table used to say which country a device is
//! in from its serving network (e.g. the MCC part of `3GPP-SGSN-MCC-MNC`).
//! Lookups by MCC are a binary search over a sorted `static` array; the
//! reverse lookups ([`mccs_of`], [`country_name`]) are a linear scan of the
//! same ~240 entries. Nothing allocates.
//!
//! Conventions:
//!
//! * Every MCC maps to exactly one country, identified by its ISO 3166-1
//!   alpha-2 code in UPPER case and an English short name. Countries with
//!   several MCCs (United States 310-316, India 404-406, Japan 440-441,
//!   United Kingdom 234/235, United Arab Emirates 424/430/431, China
//!   460/461) map all of them to the same country.
//! * Territories without an MCC of their own are reported as the country
//!   that owns the MCC their networks use: Guernsey, Jersey and the Isle of
//!   Man appear as the United Kingdom (234/235), Palestine as Israel (425),
//!   and US territories using 310-316 as the United States. Their ISO codes
//!   are unknown to [`mccs_of`] and [`country_name`].
//! * MCCs shared by several territories of one state map to the principal
//!   one: 340 (French Antilles: Guadeloupe, Martinique, Saint Barthélemy,
//!   Saint Martin, French Guiana operators) -> Guadeloupe `GP`; 647 (Réunion,
//!   Mayotte) -> Réunion `RE`; 362 (Curaçao, Sint Maarten, Caribbean
//!   Netherlands) -> Curaçao `CW`.
//! * Kosovo (221) uses the user-assigned code `XK`.
//! * Codes that are not a country return `None`: test network 001,
//!   international / shared codes 901 and 902, 991 (trial), 999 (internal),
//!   and every unassigned code. 995 (British Indian Ocean Territory) is a
//!   real territory and is listed. 289 (used by Abkhazia, not an ITU
//!   assignment) returns `None`.

/// One MCC's country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MccCountry {
    /// The mobile country code, e.g. 262.
    pub mcc: u16,
    /// ISO 3166-1 alpha-2, UPPER case, e.g. "DE".
    pub iso: &'static str,
    /// English short name, e.g. "Germany".
    pub name: &'static str,
}

const fn c(mcc: u16, iso: &'static str, name: &'static str) -> MccCountry {
    MccCountry { mcc, iso, name }
}

/// The table, sorted by strictly increasing MCC (checked at compile time).
const ENTRIES: &[MccCountry] = &[
    // Zone 2: Europe.
    c(202, "GR", "Greece"),
    c(204, "NL", "Netherlands"),
    c(206, "BE", "Belgium"),
    c(208, "FR", "France"),
    c(212, "MC", "Monaco"),
    c(213, "AD", "Andorra"),
    c(214, "ES", "Spain"),
    c(216, "HU", "Hungary"),
    c(218, "BA", "Bosnia and Herzegovina"),
    c(219, "HR", "Croatia"),
    c(220, "RS", "Serbia"),
    c(221, "XK", "Kosovo"),
    c(222, "IT", "Italy"),
    c(225, "VA", "Vatican City"),
    c(226, "RO", "Romania"),
    c(228, "CH", "Switzerland"),
    c(230, "CZ", "Czechia"),
    c(231, "SK", "Slovakia"),
    c(232, "AT", "Austria"),
    c(234, "GB", "United Kingdom"),
    c(235, "GB", "United Kingdom"),
    c(238, "DK", "Denmark"),
    c(240, "SE", "Sweden"),
    c(242, "NO", "Norway"),
    c(244, "FI", "Finland"),
    c(246, "LT", "Lithuania"),
    c(247, "LV", "Latvia"),
    c(248, "EE", "Estonia"),
    c(250, "RU", "Russia"),
    c(255, "UA", "Ukraine"),
    c(257, "BY", "Belarus"),
    c(259, "MD", "Moldova"),
    c(260, "PL", "Poland"),
    c(262, "DE", "Germany"),
    c(266, "GI", "Gibraltar"),
    c(268, "PT", "Portugal"),
    c(270, "LU", "Luxembourg"),
    c(272, "IE", "Ireland"),
    c(274, "IS", "Iceland"),
    c(276, "AL", "Albania"),
    c(278, "MT", "Malta"),
    c(280, "CY", "Cyprus"),
    c(282, "GE", "Georgia"),
    c(283, "AM", "Armenia"),
    c(284, "BG", "Bulgaria"),
    c(286, "TR", "Türkiye"),
    c(288, "FO", "Faroe Islands"),
    c(290, "GL", "Greenland"),
    c(292, "SM", "San Marino"),
    c(293, "SI", "Slovenia"),
    c(294, "MK", "North Macedonia"),
    c(295, "LI", "Liechtenstein"),
    c(297, "ME", "Montenegro"),
    // Zone 3: North America and the Caribbean.
    c(302, "CA", "Canada"),
    c(308, "PM", "Saint Pierre and Miquelon"),
    c(310, "US", "United States"),
    c(311, "US", "United States"),
    c(312, "US", "United States"),
    c(313, "US", "United States"),
    c(314, "US", "United States"),
    c(315, "US", "United States"),
    c(316, "US", "United States"),
    c(330, "PR", "Puerto Rico"),
    c(332, "VI", "United States Virgin Islands"),
    c(334, "MX", "Mexico"),
    c(338, "JM", "Jamaica"),
    c(340, "GP", "Guadeloupe"),
    c(342, "BB", "Barbados"),
    c(344, "AG", "Antigua and Barbuda"),
    c(346, "KY", "Cayman Islands"),
    c(348, "VG", "British Virgin Islands"),
    c(350, "BM", "Bermuda"),
    c(352, "GD", "Grenada"),
    c(354, "MS", "Montserrat"),
    c(356, "KN", "Saint Kitts and Nevis"),
    c(358, "LC", "Saint Lucia"),
    c(360, "VC", "Saint Vincent and the Grenadines"),
    c(362, "CW", "Curaçao"),
    c(363, "AW", "Aruba"),
    c(364, "BS", "Bahamas"),
    c(365, "AI", "Anguilla"),
    c(366, "DM", "Dominica"),
    c(368, "CU", "Cuba"),
    c(370, "DO", "Dominican Republic"),
    c(372, "HT", "Haiti"),
    c(374, "TT", "Trinidad and Tobago"),
    c(376, "TC", "Turks and Caicos Islands"),
    // Zone 4: Asia and the Middle East.
    c(400, "AZ", "Azerbaijan"),
    c(401, "KZ", "Kazakhstan"),
    c(402, "BT", "Bhutan"),
    c(404, "IN", "India"),
    c(405, "IN", "India"),
    c(406, "IN", "India"),
    c(410, "PK", "Pakistan"),
    c(412, "AF", "Afghanistan"),
    c(413, "LK", "Sri Lanka"),
    c(414, "MM", "Myanmar"),
    c(415, "LB", "Lebanon"),
    c(416, "JO", "Jordan"),
    c(417, "SY", "Syria"),
    c(418, "IQ", "Iraq"),
    c(419, "KW", "Kuwait"),
    c(420, "SA", "Saudi Arabia"),
    c(421, "YE", "Yemen"),
    c(422, "OM", "Oman"),
    c(424, "AE", "United Arab Emirates"),
    c(425, "IL", "Israel"),
    c(426, "BH", "Bahrain"),
    c(427, "QA", "Qatar"),
    c(428, "MN", "Mongolia"),
    c(429, "NP", "Nepal"),
    c(430, "AE", "United Arab Emirates"),
    c(431, "AE", "United Arab Emirates"),
    c(432, "IR", "Iran"),
    c(434, "UZ", "Uzbekistan"),
    c(436, "TJ", "Tajikistan"),
    c(437, "KG", "Kyrgyzstan"),
    c(438, "TM", "Turkmenistan"),
    c(440, "JP", "Japan"),
    c(441, "JP", "Japan"),
    c(450, "KR", "South Korea"),
    c(452, "VN", "Vietnam"),
    c(454, "HK", "Hong Kong"),
    c(455, "MO", "Macao"),
    c(456, "KH", "Cambodia"),
    c(457, "LA", "Laos"),
    c(460, "CN", "China"),
    c(461, "CN", "China"),
    c(466, "TW", "Taiwan"),
    c(467, "KP", "North Korea"),
    c(470, "BD", "Bangladesh"),
    c(472, "MV", "Maldives"),
    // Zone 5: Oceania and South-East Asia.
    c(502, "MY", "Malaysia"),
    c(505, "AU", "Australia"),
    c(510, "ID", "Indonesia"),
    c(514, "TL", "Timor-Leste"),
    c(515, "PH", "Philippines"),
    c(520, "TH", "Thailand"),
    c(525, "SG", "Singapore"),
    c(528, "BN", "Brunei"),
    c(530, "NZ", "New Zealand"),
    c(534, "MP", "Northern Mariana Islands"),
    c(535, "GU", "Guam"),
    c(536, "NR", "Nauru"),
    c(537, "PG", "Papua New Guinea"),
    c(539, "TO", "Tonga"),
    c(540, "SB", "Solomon Islands"),
    c(541, "VU", "Vanuatu"),
    c(542, "FJ", "Fiji"),
    c(543, "WF", "Wallis and Futuna"),
    c(544, "AS", "American Samoa"),
    c(545, "KI", "Kiribati"),
    c(546, "NC", "New Caledonia"),
    c(547, "PF", "French Polynesia"),
    c(548, "CK", "Cook Islands"),
    c(549, "WS", "Samoa"),
    c(550, "FM", "Micronesia"),
    c(551, "MH", "Marshall Islands"),
    c(552, "PW", "Palau"),
    c(553, "TV", "Tuvalu"),
    c(554, "TK", "Tokelau"),
    c(555, "NU", "Niue"),
    // Zone 6: Africa.
    c(602, "EG", "Egypt"),
    c(603, "DZ", "Algeria"),
    c(604, "MA", "Morocco"),
    c(605, "TN", "Tunisia"),
    c(606, "LY", "Libya"),
    c(607, "GM", "Gambia"),
    c(608, "SN", "Senegal"),
    c(609, "MR", "Mauritania"),
    c(610, "ML", "Mali"),
    c(611, "GN", "Guinea"),
    c(612, "CI", "Côte d'Ivoire"),
    c(613, "BF", "Burkina Faso"),
    c(614, "NE", "Niger"),
    c(615, "TG", "Togo"),
    c(616, "BJ", "Benin"),
    c(617, "MU", "Mauritius"),
    c(618, "LR", "Liberia"),
    c(619, "SL", "Sierra Leone"),
    c(620, "GH", "Ghana"),
    c(621, "NG", "Nigeria"),
    c(622, "TD", "Chad"),
    c(623, "CF", "Central African Republic"),
    c(624, "CM", "Cameroon"),
    c(625, "CV", "Cabo Verde"),
    c(626, "ST", "São Tomé and Príncipe"),
    c(627, "GQ", "Equatorial Guinea"),
    c(628, "GA", "Gabon"),
    c(629, "CG", "Republic of the Congo"),
    c(630, "CD", "Democratic Republic of the Congo"),
    c(631, "AO", "Angola"),
    c(632, "GW", "Guinea-Bissau"),
    c(633, "SC", "Seychelles"),
    c(634, "SD", "Sudan"),
    c(635, "RW", "Rwanda"),
    c(636, "ET", "Ethiopia"),
    c(637, "SO", "Somalia"),
    c(638, "DJ", "Djibouti"),
    c(639, "KE", "Kenya"),
    c(640, "TZ", "Tanzania"),
    c(641, "UG", "Uganda"),
    c(642, "BI", "Burundi"),
    c(643, "MZ", "Mozambique"),
    c(645, "ZM", "Zambia"),
    c(646, "MG", "Madagascar"),
    c(647, "RE", "Réunion"),
    c(648, "ZW", "Zimbabwe"),
    c(649, "NA", "Namibia"),
    c(650, "MW", "Malawi"),
    c(651, "LS", "Lesotho"),
    c(652, "BW", "Botswana"),
    c(653, "SZ", "Eswatini"),
    c(654, "KM", "Comoros"),
    c(655, "ZA", "South Africa"),
    c(657, "ER", "Eritrea"),
    c(658, "SH", "Saint Helena, Ascension and Tristan da Cunha"),
    c(659, "SS", "South Sudan"),
    // Zone 7: Central and South America.
    c(702, "BZ", "Belize"),
    c(704, "GT", "Guatemala"),
    c(706, "SV", "El Salvador"),
    c(708, "HN", "Honduras"),
    c(710, "NI", "Nicaragua"),
    c(712, "CR", "Costa Rica"),
    c(714, "PA", "Panama"),
    c(716, "PE", "Peru"),
    c(722, "AR", "Argentina"),
    c(724, "BR", "Brazil"),
    c(730, "CL", "Chile"),
    c(732, "CO", "Colombia"),
    c(734, "VE", "Venezuela"),
    c(736, "BO", "Bolivia"),
    c(738, "GY", "Guyana"),
    c(740, "EC", "Ecuador"),
    c(742, "GF", "French Guiana"),
    c(744, "PY", "Paraguay"),
    c(746, "SR", "Suriname"),
    c(748, "UY", "Uruguay"),
    c(750, "FK", "Falkland Islands"),
    // Zone 9: the only country code among the international/shared codes.
    c(995, "IO", "British Indian Ocean Territory"),
];

/// Countries with more than one MCC, for [`mccs_of`]. Every other country
/// has exactly one entry in [`TABLE`] (checked by the unit tests).
const MULTI: &[(&str, &[u16])] = &[
    ("AE", &[424, 430, 431]),
    ("CN", &[460, 461]),
    ("GB", &[234, 235]),
    ("IN", &[404, 405, 406]),
    ("JP", &[440, 441]),
    ("US", &[310, 311, 312, 313, 314, 315, 316]),
];

static TABLE: &[MccCountry] = ENTRIES;

// Compile-time invariants: sorted by strictly increasing MCC (binary search
// relies on it), MCCs are three digits, ISO codes are two ASCII upper-case
// letters, names are non-empty.
const _: () = {
    let mut i = 0;
    while i < ENTRIES.len() {
        let e = &ENTRIES[i];
        assert!(e.mcc >= 200 && e.mcc <= 999, "MCC out of range");
        if i > 0 {
            assert!(ENTRIES[i - 1].mcc < e.mcc, "MCC table not sorted");
        }
        let iso = e.iso.as_bytes();
        assert!(iso.len() == 2, "ISO code must be two letters");
        assert!(iso[0].is_ascii_uppercase() && iso[1].is_ascii_uppercase());
        assert!(!e.name.is_empty(), "empty country name");
        i += 1;
    }
};

/// Country of a mobile country code.
///
/// Shared MCCs (310-316 US, 404-406 India, 440-441 Japan, 234/235 GB, ...)
/// all map to their country. Returns `None` for codes that are not a
/// country: 001 (test), 901/902 (international, e.g. satellite and global
/// IoT operators), 991 (trial), 999 (internal), 289 (Abkhazia, not an ITU
/// assignment) and every unassigned code. See the module docs.
pub fn country(mcc: u16) -> Option<MccCountry> {
    TABLE
        .binary_search_by_key(&mcc, |e| e.mcc)
        .ok()
        .map(|i| TABLE[i])
}

/// Reverse lookup: the MCCs of a country, in increasing order, e.g.
/// `mccs_of("US") == [310, 311, 312, 313, 314, 315, 316]`.
///
/// `iso` is an ISO 3166-1 alpha-2 code, matched case-insensitively. Returns
/// an empty slice for unknown codes, including territories that have no MCC
/// of their own (e.g. "JE", "GG", "IM", "PS"): their devices are reported
/// as the country owning the MCC (see the module docs).
pub fn mccs_of(iso: &str) -> &'static [u16] {
    if let Some(&(_, mccs)) = MULTI.iter().find(|(i, _)| i.eq_ignore_ascii_case(iso)) {
        return mccs;
    }
    match TABLE.iter().find(|e| e.iso.eq_ignore_ascii_case(iso)) {
        Some(e) => core::slice::from_ref(&e.mcc),
        None => &[],
    }
}

/// ISO 3166-1 alpha-2 code (case-insensitive) -> English short name, for
/// the countries in the table; `None` otherwise.
pub fn country_name(iso: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|e| e.iso.eq_ignore_ascii_case(iso))
        .map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(mcc: u16) -> Option<&'static str> {
        country(mcc).map(|c| c.iso)
    }

    #[test]
    fn well_known_codes() {
        let cases: &[(u16, &str, &str)] = &[
            (262, "DE", "Germany"),
            (204, "NL", "Netherlands"),
            (208, "FR", "France"),
            (234, "GB", "United Kingdom"),
            (235, "GB", "United Kingdom"),
            (310, "US", "United States"),
            (316, "US", "United States"),
            (460, "CN", "China"),
            (505, "AU", "Australia"),
            (724, "BR", "Brazil"),
            (222, "IT", "Italy"),
            (214, "ES", "Spain"),
            (302, "CA", "Canada"),
            (405, "IN", "India"),
            (441, "JP", "Japan"),
            (250, "RU", "Russia"),
            (290, "GL", "Greenland"),
            (288, "FO", "Faroe Islands"),
            (266, "GI", "Gibraltar"),
            (221, "XK", "Kosovo"),
            (655, "ZA", "South Africa"),
            (995, "IO", "British Indian Ocean Territory"),
        ];
        for &(mcc, iso, name) in cases {
            assert_eq!(
                country(mcc),
                Some(MccCountry { mcc, iso, name }),
                "MCC {mcc}"
            );
        }
    }

    #[test]
    fn non_country_codes_are_none() {
        for mcc in [0, 1, 199, 201, 289, 317, 901, 902, 991, 999, 1000, u16::MAX] {
            assert_eq!(country(mcc), None, "MCC {mcc}");
        }
        assert!((900..=999)
            .filter(|&m| m != 995)
            .all(|m| country(m).is_none()));
    }

    #[test]
    fn table_size_and_zones() {
        assert!(TABLE.len() >= 230, "only {} MCCs", TABLE.len());
        assert!(TABLE.windows(2).all(|w| w[0].mcc < w[1].mcc));
        // Every listed code belongs to a geographic zone (2-7) or is 995.
        assert!(TABLE
            .iter()
            .all(|e| (200..800).contains(&e.mcc) || e.mcc == 995));
    }

    #[test]
    fn reverse_lookup_matches_forward_table() {
        for e in TABLE {
            let expected: Vec<u16> = TABLE
                .iter()
                .filter(|o| o.iso == e.iso)
                .map(|o| o.mcc)
                .collect();
            assert_eq!(mccs_of(e.iso), expected.as_slice(), "{}", e.iso);
            // One name per ISO code.
            assert_eq!(country_name(e.iso), Some(e.name), "{}", e.iso);
        }
        for (iso, mccs) in MULTI {
            assert!(mccs.len() > 1, "{iso} is not multi-MCC");
            for &m in *mccs {
                assert_eq!(country(m).map(|c| c.iso), Some(*iso), "MCC {m}");
            }
        }
    }

    #[test]
    fn mccs_of_examples() {
        assert_eq!(mccs_of("US"), &[310, 311, 312, 313, 314, 315, 316]);
        assert_eq!(mccs_of("us"), mccs_of("US"));
        assert_eq!(mccs_of("gB"), &[234, 235]);
        assert_eq!(mccs_of("IN"), &[404, 405, 406]);
        assert_eq!(mccs_of("JP"), &[440, 441]);
        assert_eq!(mccs_of("AE"), &[424, 430, 431]);
        assert_eq!(mccs_of("de"), &[262]);
        assert_eq!(mccs_of("NL"), &[204]);
        assert!(mccs_of("JE").is_empty());
        assert!(mccs_of("ZZ").is_empty());
        assert!(mccs_of("").is_empty());
        assert!(mccs_of("USA").is_empty());
        assert!(mccs_of("XX").is_empty());
    }

    #[test]
    fn country_name_examples() {
        assert_eq!(country_name("DE"), Some("Germany"));
        assert_eq!(country_name("de"), Some("Germany"));
        assert_eq!(country_name("Us"), Some("United States"));
        assert_eq!(country_name("CI"), Some("Côte d'Ivoire"));
        assert_eq!(country_name("ZZ"), None);
        assert_eq!(country_name(""), None);
        assert_eq!(country_name("GER"), None);
    }

    #[test]
    fn iso_codes_look_like_iso() {
        assert_eq!(iso(204), Some("NL"));
        assert_eq!(iso(901), None);
        for e in TABLE {
            assert!(e.iso.len() == 2 && e.iso.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }
}
