//! Compact identifiers: digit strings (IMSI, MSISDN, IMEI), PLMNs and cells.
//!
//! Per-device state must stay under 1 KiB at a million devices, so identifiers
//! are packed into integers instead of heap strings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU64;

/// A string of 1 to 16 decimal digits packed into a u64, keeping its length so
/// that leading zeros survive ("001010000000001" is a valid test-network IMSI).
///
/// Layout: the top 8 bits hold the digit count, the low 56 bits the value
/// (10^16 < 2^56). Ordering is by length, then by value. The length is at
/// least 1, so the packed form is never zero and `Option<Digits>` costs no
/// more than a `Digits` (a device holds four of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Digits(NonZeroU64);

const VALUE_BITS: u32 = 56;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;

impl Digits {
    pub const MAX_LEN: usize = 16;

    /// Parses 1..=16 ASCII digits; anything else is `None`.
    pub fn parse(s: &str) -> Option<Digits> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > Self::MAX_LEN {
            return None;
        }
        let mut v: u64 = 0;
        for &c in b {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
        }
        NonZeroU64::new(((b.len() as u64) << VALUE_BITS) | v).map(Digits)
    }

    pub fn len(self) -> usize {
        (self.0.get() >> VALUE_BITS) as usize
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn value(self) -> u64 {
        self.0.get() & VALUE_MASK
    }

    /// The raw packed form, stable across versions: used as the map key and in the store.
    pub fn packed(self) -> u64 {
        self.0.get()
    }

    pub fn from_packed(v: u64) -> Option<Digits> {
        let d = Digits(NonZeroU64::new(v)?);
        let len = d.len();
        if len == 0 || len > Self::MAX_LEN || d.value() >= 10u64.pow(len as u32) {
            return None;
        }
        Some(d)
    }

    /// The first `n` digits (for example the 8-digit TAC of an IMEI).
    pub fn prefix(self, n: usize) -> Option<Digits> {
        let len = self.len();
        if n == 0 || n > len {
            return None;
        }
        let v = self.value() / 10u64.pow((len - n) as u32);
        NonZeroU64::new(((n as u64) << VALUE_BITS) | v).map(Digits)
    }
}

impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$}", self.value(), width = self.len())
    }
}

impl fmt::Debug for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A public land mobile network: MCC plus MNC. The MNC keeps its digit count
/// because "01" and "001" are different networks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Plmn {
    pub mcc: u16,
    pub mnc: u16,
    pub mnc_digits: u8,
}

impl Plmn {
    pub fn new(mcc: u16, mnc: u16, mnc_digits: u8) -> Option<Plmn> {
        let ok = mcc <= 999
            && match mnc_digits {
                2 => mnc <= 99,
                3 => mnc <= 999,
                _ => false,
            };
        ok.then_some(Plmn {
            mcc,
            mnc,
            mnc_digits,
        })
    }

    /// Parses "26201", "310410", "262-01" or "310-410".
    pub fn parse(s: &str) -> Option<Plmn> {
        let (mcc, mnc) = match s.split_once('-') {
            Some((a, b)) => (a, b),
            None if s.len() == 5 || s.len() == 6 => s.split_at(3),
            None => return None,
        };
        if mcc.len() != 3 || !(mnc.len() == 2 || mnc.len() == 3) {
            return None;
        }
        if !mcc.bytes().chain(mnc.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        Plmn::new(mcc.parse().ok()?, mnc.parse().ok()?, mnc.len() as u8)
    }

    pub fn mnc_string(&self) -> String {
        format!("{:0w$}", self.mnc, w = usize::from(self.mnc_digits))
    }

    /// The ISO country of the MCC, if it belongs to a country.
    pub fn country(&self) -> Option<&'static str> {
        crate::mcc::country(self.mcc).map(|c| c.iso)
    }
}

impl fmt::Display for Plmn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:03}-{:0w$}",
            self.mcc,
            self.mnc,
            w = usize::from(self.mnc_digits)
        )
    }
}

impl fmt::Debug for Plmn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Which 3GPP location type a cell came from; it decides what `area` and `id` mean.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum CellKind {
    /// GERAN cell global identity: area = LAC, id = CI.
    Cgi,
    /// UTRAN service area: area = LAC, id = SAC.
    Sai,
    /// Routing area: area = LAC, id = RAC.
    Rai,
    /// Tracking area only (no cell): area = TAC, id = 0.
    Tai,
    /// E-UTRAN cell: area = TAC (0 if only the ECGI was sent), id = 28-bit ECI.
    Ecgi,
    /// NR cell: area = TAC, id = 36-bit NCI.
    Ncgi,
}

impl CellKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CellKind::Cgi => "CGI",
            CellKind::Sai => "SAI",
            CellKind::Rai => "RAI",
            CellKind::Tai => "TAI",
            CellKind::Ecgi => "ECGI",
            CellKind::Ncgi => "NCGI",
        }
    }
}

/// The serving cell, from 3GPP-User-Location-Info.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub kind: CellKind,
    pub plmn: Plmn,
    pub area: u32,
    pub id: u64,
}

/// MS time zone: offset from UTC and the daylight-saving adjustment included in it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TimeZone {
    pub offset_minutes: i16,
    pub dst_hours: u8,
}

/// FNV-1a: a stable, dependency-free hash. Stability matters because hashes
/// are stored in snapshots and decide partitions.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator so that ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_keep_leading_zeros_and_length() {
        let d = Digits::parse("001010000000001").unwrap();
        assert_eq!(d.len(), 15);
        assert_eq!(d.to_string(), "001010000000001");
        assert_eq!(Digits::from_packed(d.packed()), Some(d));
        assert_ne!(Digits::parse("01").unwrap(), Digits::parse("1").unwrap());
    }

    #[test]
    fn digits_reject_non_digits_and_overlong() {
        assert_eq!(Digits::parse(""), None);
        assert_eq!(Digits::parse("12a"), None);
        assert_eq!(Digits::parse("12345678901234567"), None);
        assert!(Digits::parse("9999999999999999").is_some());
        assert_eq!(Digits::from_packed(0), None);
    }

    #[test]
    fn digits_prefix_gives_tac() {
        let imeisv = Digits::parse("3520990017614823").unwrap();
        assert_eq!(imeisv.prefix(8).unwrap().to_string(), "35209900");
        assert_eq!(imeisv.prefix(17), None);
    }

    #[test]
    fn plmn_parse_and_display_keep_mnc_width() {
        let a = Plmn::parse("26201").unwrap();
        let b = Plmn::parse("262001").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "262-01");
        assert_eq!(b.to_string(), "262-001");
        assert_eq!(Plmn::parse("310-410").unwrap().mnc_string(), "410");
        assert_eq!(Plmn::parse("2620"), None);
        assert_eq!(Plmn::parse("26a01"), None);
    }
}
