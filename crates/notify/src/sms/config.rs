use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::split::DataCoding;
use super::SmsError;

/// `[notify.sms]`: one SMPP 3.4 transceiver session to one SMSC.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// SMSC host name or address: the operator's or aggregator's SMPP
    /// endpoint.
    pub host: String,
    /// SMSC TCP port; 2775 is the registered SMPP port.
    pub port: u16,
    /// Account name the SMSC knows us by (bind system_id, at most 15
    /// characters).
    pub system_id: String,
    /// Account password (at most 8 characters, an SMPP 3.4 limit).
    pub password: String,
    /// Some SMSCs route or bill by system_type; empty for most.
    pub system_type: String,
    /// submit_sm service_type; empty means the SMSC default. Some SMSCs
    /// use it to pick a route ("CMT", "WAP").
    pub service_type: String,
    /// Originator shown on the handset: a short code, a number, or an
    /// alphanumeric sender (at most 11 characters, TON 5).
    pub source_addr: String,
    /// Type of number of `source_addr`: 5 alphanumeric, 1 international,
    /// 3 network specific (short codes), 0 unknown.
    pub source_addr_ton: u8,
    /// Numbering plan of `source_addr`: 0 unknown (alphanumeric), 1 E.164.
    pub source_addr_npi: u8,
    /// Type of number of recipients: 1 international, since `Message`
    /// recipients are MSISDNs in international form (a leading '+' is
    /// dropped).
    pub dest_addr_ton: u8,
    /// Numbering plan of recipients: 1 E.164.
    pub dest_addr_npi: u8,
    /// Ask the SMSC for delivery receipts, which arrive on the receipt
    /// receiver and tell whether the handset actually got the alert.
    pub registered_delivery: bool,
    /// Keep-alive period, ms: an enquire_link this often keeps NAT and
    /// firewall state alive and detects a dead peer that never closed.
    pub enquire_link_interval_ms: u64,
    /// Wait for any response (connect, bind, submit_sm, enquire_link), ms.
    /// An unanswered enquire_link after this long drops the connection.
    pub response_timeout_ms: u64,
    /// First reconnection delay after the connection drops or the bind
    /// fails, ms; doubled after each failure.
    pub reconnect_min_ms: u64,
    /// Ceiling of the reconnection delay, ms, so a long SMSC outage is
    /// still noticed within this long of its end.
    pub reconnect_max_ms: u64,
    /// A longer text is split into at most this many concatenated parts
    /// (each billed as one SMS) and shortened with an ellipsis beyond.
    pub max_parts: u8,
    /// Alphabet: `auto` (GSM 7-bit when the text fits it, else UCS-2) or
    /// `ucs2` (always, for SMSCs that mangle the default alphabet).
    pub data_coding: DataCoding,
    /// Receipts waiting for the consumer; when full the SMSC is told to
    /// retry the deliver_sm later instead of us dropping the receipt.
    pub receipt_queue: usize,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            host: "127.0.0.1".into(),
            port: 2775,
            system_id: String::new(),
            password: String::new(),
            system_type: String::new(),
            service_type: String::new(),
            source_addr: "simguard".into(),
            source_addr_ton: 5,
            source_addr_npi: 0,
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            registered_delivery: true,
            enquire_link_interval_ms: 30_000,
            response_timeout_ms: 10_000,
            reconnect_min_ms: 1_000,
            reconnect_max_ms: 60_000,
            max_parts: 6,
            data_coding: DataCoding::Auto,
            receipt_queue: 1024,
        }
    }
}

// The password stays out of logs and panics.
impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("system_type", &self.system_type)
            .field("service_type", &self.service_type)
            .field("source_addr", &self.source_addr)
            .field("source_addr_ton", &self.source_addr_ton)
            .field("source_addr_npi", &self.source_addr_npi)
            .field("dest_addr_ton", &self.dest_addr_ton)
            .field("dest_addr_npi", &self.dest_addr_npi)
            .field("registered_delivery", &self.registered_delivery)
            .field("enquire_link_interval_ms", &self.enquire_link_interval_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("reconnect_min_ms", &self.reconnect_min_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .field("max_parts", &self.max_parts)
            .field("data_coding", &self.data_coding)
            .field("receipt_queue", &self.receipt_queue)
            .finish()
    }
}

impl SmsConfig {
    /// Checks what the SMSC would otherwise reject on every bind or
    /// submit, so the mistake shows at start with the field's name.
    pub fn validate(&self) -> Result<(), SmsError> {
        let err = |m: String| Err(SmsError::Config(m));
        if self.host.is_empty() {
            return err("host: must not be empty".into());
        }
        for (name, value, max) in [
            ("system_id", &self.system_id, 15),
            ("password", &self.password, 8),
            ("system_type", &self.system_type, 12),
            ("service_type", &self.service_type, 5),
            ("source_addr", &self.source_addr, 20),
        ] {
            if value.len() > max {
                return err(format!("{name}: at most {max} octets"));
            }
            if !value.is_ascii() || value.contains('\0') {
                return err(format!("{name}: ASCII without NUL"));
            }
        }
        if self.source_addr_ton == 5 && self.source_addr.len() > 11 {
            return err("source_addr: an alphanumeric sender has at most 11 characters".into());
        }
        for (name, v) in [
            ("enquire_link_interval_ms", self.enquire_link_interval_ms),
            ("response_timeout_ms", self.response_timeout_ms),
            ("reconnect_min_ms", self.reconnect_min_ms),
        ] {
            if v == 0 {
                return err(format!("{name}: must be at least 1"));
            }
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return err("reconnect_max_ms: must be at least reconnect_min_ms".into());
        }
        if self.max_parts == 0 {
            return err("max_parts: must be at least 1".into());
        }
        if self.receipt_queue == 0 {
            return err("receipt_queue: must be at least 1".into());
        }
        Ok(())
    }

    pub(crate) fn enquire_link_interval(&self) -> Duration {
        Duration::from_millis(self.enquire_link_interval_ms)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SmsConfig, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse("{}").unwrap();
        assert_eq!(c.port, 2775);
        assert!(c.registered_delivery);
        assert_eq!(c.max_parts, 6);
        assert_eq!(c.data_coding, DataCoding::Auto);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_codings() {
        assert!(parse(r#"{"hots":"x"}"#)
            .unwrap_err()
            .contains("unknown field"));
        let c = parse(r#"{"data_coding":"ucs2","password":"secret"}"#).unwrap();
        assert_eq!(c.data_coding, DataCoding::Ucs2);
        assert!(!format!("{c:?}").contains("secret"));
        assert!(parse(r#"{"data_coding":"latin1"}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let check = |f: fn(&mut SmsConfig), needle: &str| {
            let mut c = SmsConfig::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        check(|c| c.password = "123456789".into(), "password");
        check(|c| c.system_id = "x".repeat(16), "system_id");
        check(|c| c.source_addr = "simguard-alerts".into(), "alphanumeric");
        check(|c| c.response_timeout_ms = 0, "response_timeout_ms");
        check(|c| c.reconnect_max_ms = 10, "reconnect_max_ms");
        check(|c| c.max_parts = 0, "max_parts");
        check(|c| c.host.clear(), "host");
    }
}
