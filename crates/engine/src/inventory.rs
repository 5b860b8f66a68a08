//! Inventory: tenants, device groups with their declared behaviour profile,
//! and provisioned devices. Changes arrive as journal events so that the
//! same journal always rebuilds the same inventory.

use crate::ids::{Digits, Plmn};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a SIM is in its life. Enforcement (admission, CoA) reads it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum Lifecycle {
    #[default]
    Active,
    Throttled,
    Quarantined,
    Blocked,
    Retired,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 5] = [
        Lifecycle::Active,
        Lifecycle::Throttled,
        Lifecycle::Quarantined,
        Lifecycle::Blocked,
        Lifecycle::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Throttled => "throttled",
            Lifecycle::Quarantined => "quarantined",
            Lifecycle::Blocked => "blocked",
            Lifecycle::Retired => "retired",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lifecycle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lifecycle::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown lifecycle state {s:?}; expected one of active, throttled, quarantined, blocked, retired"
                )
            })
    }
}

/// A customer of the connectivity provider. Every device and group belongs to one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable slug used in the API and in CSV files.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// How the devices of a group are declared to behave. Detection holds each
/// device to it; absent fields mean "not declared".
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct DeclaredProfile {
    /// Expected upper bound of bytes a device sends (uplink) per day.
    /// Downloads are not counted: they come from the fleet's own servers
    /// (firmware, configuration) and are not the device's behaviour.
    pub max_bytes_per_day: Option<u64>,
    /// Expected time between reports (sessions or interim updates), seconds.
    pub report_interval_secs: Option<u32>,
    /// Hours of the day (UTC, start inclusive, end exclusive) in which the devices are expected to talk.
    pub active_hours: Option<(u8, u8)>,
    /// ISO 3166 alpha-2 codes where the devices may be; empty = anywhere.
    pub allowed_countries: Vec<String>,
    /// Serving networks the devices may use; empty = any.
    pub allowed_networks: Vec<Plmn>,
    /// RAT types (3GPP numbering) the devices may use; empty = any.
    pub allowed_rats: Vec<u8>,
    /// Whether a device must keep its bound IMEI (admission rejects others).
    pub imei_lock: bool,
}

/// A set of devices of one kind, owned by a tenant.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Group {
    /// Stable slug, unique across tenants, used in the API and CSV files.
    pub id: String,
    /// Owning tenant's id.
    pub tenant: String,
    pub name: String,
    pub profile: DeclaredProfile,
    /// Detectors switched off for this group (all are on by default).
    #[serde(default)]
    pub disabled_detectors: Vec<crate::finding::Detector>,
}

/// A provisioned SIM and the device it is meant to be in.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub imsi: Digits,
    /// ICCID: 18 to 20 digits, kept as text because it can exceed 16 digits.
    pub iccid: Option<String>,
    pub msisdn: Option<Digits>,
    /// The IMEI (14 or 15 digits) the SIM is bound to, if any.
    pub bound_imei: Option<Digits>,
    pub tenant: String,
    pub group: String,
    pub lifecycle: Lifecycle,
    /// Free label for people ("meter 42, building C").
    pub label: Option<String>,
}

/// A field-level validation failure, named so that importers can report line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Luhn check used by IMEIs and ICCIDs.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// A slug: lower-case letters, digits, '-' and '_', 1 to 64 characters.
pub fn validate_slug(field: &'static str, s: &str) -> Result<(), FieldError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(err(
            field,
            format!("{s:?} is not a valid id (1-64 of a-z, 0-9, '-', '_')"),
        ))
    }
}

pub fn parse_imsi(s: &str) -> Result<Digits, FieldError> {
    let s = s.trim();
    if !all_digits(s) || !(6..=15).contains(&s.len()) {
        return Err(err("imsi", format!("{s:?} is not 6 to 15 digits")));
    }
    Digits::parse(s).ok_or_else(|| err("imsi", format!("{s:?} is not 6 to 15 digits")))
}

pub fn parse_iccid(s: &str) -> Result<String, FieldError> {
    let s = s.trim();
    if !all_digits(s) || !(18..=20).contains(&s.len()) {
        return Err(err("iccid", format!("{s:?} is not 18 to 20 digits")));
    }
    Ok(s.to_string())
}

pub fn parse_msisdn(s: &str) -> Result<Digits, FieldError> {
    let t = s.trim().trim_start_matches('+');
    if !all_digits(t) || !(5..=15).contains(&t.len()) {
        return Err(err(
            "msisdn",
            format!("{s:?} is not 5 to 15 digits (an optional leading + is allowed)"),
        ));
    }
    Digits::parse(t).ok_or_else(|| err("msisdn", "not digits"))
}

/// A bound IMEI: 14 digits (TAC + serial), 15 with a Luhn check digit, or a
/// 16-digit IMEISV (whose last two digits are the software version).
pub fn parse_imei(s: &str) -> Result<Digits, FieldError> {
    let s = s.trim();
    if !all_digits(s) || !(14..=16).contains(&s.len()) {
        return Err(err("imei", format!("{s:?} is not 14 to 16 digits")));
    }
    if s.len() == 15 && !luhn_valid(s) {
        return Err(err(
            "imei",
            format!("{s:?} fails the Luhn check digit (use 14 digits to omit it)"),
        ));
    }
    Digits::parse(s).ok_or_else(|| err("imei", "not digits"))
}

impl DeviceRecord {
    /// Checks the fields that the constructors cannot (slugs, label size).
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_slug("tenant", &self.tenant)?;
        validate_slug("group", &self.group)?;
        if let Some(l) = &self.label {
            if l.len() > 200 {
                return Err(err("label", "longer than 200 characters"));
            }
        }
        Ok(())
    }
}

/// The 14-digit IMEI body (TAC + serial) of an IMEI or IMEISV, for comparing
/// a device's reported IMEISV against the bound IMEI whatever the form.
pub fn imei_body(d: Digits) -> Option<Digits> {
    d.prefix(14)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imei_luhn_is_checked_only_for_15_digits() {
        assert!(parse_imei("490154203237518").is_ok());
        let e = parse_imei("490154203237519").unwrap_err();
        assert_eq!(e.field, "imei");
        assert!(e.message.contains("Luhn"));
        assert!(parse_imei("49015420323751").is_ok());
        assert!(parse_imei("3520990017614823").is_ok());
        assert!(parse_imei("35209900176148x").is_err());
    }

    #[test]
    fn field_errors_name_the_field() {
        assert_eq!(parse_imsi("12345").unwrap_err().field, "imsi");
        assert_eq!(parse_iccid("8949").unwrap_err().field, "iccid");
        assert_eq!(parse_msisdn("+49 170").unwrap_err().field, "msisdn");
        assert_eq!(
            parse_msisdn("+491701234567").unwrap().to_string(),
            "491701234567"
        );
        assert!(validate_slug("group", "Meters").is_err());
        assert!("paused".parse::<Lifecycle>().is_err());
        assert_eq!("Blocked".parse::<Lifecycle>(), Ok(Lifecycle::Blocked));
    }

    #[test]
    fn imei_body_matches_imei_and_imeisv() {
        let imei = parse_imei("352099001761481").unwrap();
        let imeisv = parse_imei("3520990017614823").unwrap();
        assert_eq!(imei_body(imei), imei_body(imeisv));
    }
}
