//! Typed view of an Accounting-Request (RFC 2866 §5, 3GPP TS 29.061 §16.4.7).

use std::net::Ipv4Addr;

use crate::acct::StatusType;
use crate::attr;
use crate::packet::{split_tlv, split_vsa, Packet};
use crate::tgpp::{self, MsTimeZone, Plmn, RatType, UserLocationInfo};
use crate::writer::{EncodeError, PacketWriter};

/// An attribute that is present but whose value cannot be what its type says.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AttrError {
    /// Wrong value length for the attribute's type.
    #[error("{attr}: length {len}, expected {expected}")]
    Length {
        /// Attribute name.
        attr: &'static str,
        /// Value length received.
        len: usize,
        /// What the type requires, e.g. "4" or "1 or 4".
        expected: &'static str,
    },
    /// A text attribute that is not UTF-8.
    #[error("{attr}: value is not valid UTF-8")]
    NotUtf8 {
        /// Attribute name.
        attr: &'static str,
    },
    /// A value outside what the attribute allows.
    #[error("{attr}: {value:?} is not {expected}")]
    Invalid {
        /// Attribute name.
        attr: &'static str,
        /// The offending value, lossily printable and cut to 64 characters.
        value: String,
        /// What was expected, e.g. "5-15 digits".
        expected: &'static str,
    },
    /// A 3GPP-User-Location-Info whose length does not fit its location type.
    #[error("3GPP-User-Location-Info: type {typ} needs {expected} octets, got {got}")]
    UliLength {
        /// Geographic Location Type.
        typ: u8,
        /// Octets the type needs, type octet included.
        expected: usize,
        /// Octets received.
        got: usize,
    },
    /// A PLMN identity with non-decimal BCD digits.
    #[error("{attr}: PLMN octets {bcd:02x?} are not valid BCD")]
    BadPlmn {
        /// Attribute name.
        attr: &'static str,
        /// The three PLMN octets.
        bcd: [u8; 3],
    },
    /// A 3GPP Vendor-Specific attribute whose sub-attributes do not tile its value.
    #[error("Vendor-Specific at offset {offset} (vendor {vendor}): malformed sub-attributes")]
    MalformedVsa {
        /// Vendor id.
        vendor: u32,
        /// Offset of the Vendor-Specific attribute in the packet.
        offset: usize,
    },
}

impl AttrError {
    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        "bad_attribute"
    }
}

/// Semantic view of an Accounting-Request, borrowing from the packet (no allocation).
///
/// When an attribute occurs more than once the first occurrence is used, as
/// [`Packet::attribute`] does. Attributes not listed here are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounting<'a> {
    /// Acct-Status-Type.
    pub status_type: Option<StatusType>,
    /// Acct-Session-Id.
    pub session_id: Option<&'a str>,
    /// Acct-Multi-Session-Id.
    pub multi_session_id: Option<&'a str>,
    /// User-Name.
    pub user_name: Option<&'a str>,
    /// NAS-IP-Address.
    pub nas_ip: Option<Ipv4Addr>,
    /// NAS-Identifier.
    pub nas_identifier: Option<&'a str>,
    /// Framed-IP-Address: the UE's IPv4 address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Called-Station-Id: the APN on packet gateways.
    pub called_station_id: Option<&'a str>,
    /// Calling-Station-Id: the MSISDN on packet gateways.
    pub calling_station_id: Option<&'a str>,
    /// Acct-Input-Octets combined with Acct-Input-Gigawords: `(gigawords << 32) | octets`.
    pub input_octets: Option<u64>,
    /// Acct-Output-Octets combined with Acct-Output-Gigawords.
    pub output_octets: Option<u64>,
    /// Acct-Input-Packets.
    pub input_packets: Option<u32>,
    /// Acct-Output-Packets.
    pub output_packets: Option<u32>,
    /// Acct-Session-Time in seconds.
    pub session_time: Option<u32>,
    /// Acct-Terminate-Cause (see [`crate::acct::terminate_cause`]).
    pub terminate_cause: Option<u32>,
    /// Acct-Interim-Interval in seconds.
    pub interim_interval: Option<u32>,
    /// Event-Timestamp, seconds since the Unix epoch.
    pub event_timestamp: Option<u32>,
    /// Acct-Delay-Time in seconds.
    pub delay_time: Option<u32>,
    /// 3GPP-IMSI, 5..=15 ASCII digits.
    pub imsi: Option<&'a str>,
    /// 3GPP-IMEISV, 14..=16 ASCII digits.
    pub imeisv: Option<&'a str>,
    /// 3GPP-Charging-ID.
    pub charging_id: Option<u32>,
    /// 3GPP-PDP-Type.
    pub pdp_type: Option<u32>,
    /// 3GPP-SGSN-Address.
    pub sgsn_address: Option<Ipv4Addr>,
    /// 3GPP-GGSN-Address.
    pub ggsn_address: Option<Ipv4Addr>,
    /// 3GPP-IMSI-MCC-MNC: the subscriber's home network.
    pub imsi_mcc_mnc: Option<Plmn>,
    /// 3GPP-GGSN-MCC-MNC.
    pub ggsn_mcc_mnc: Option<Plmn>,
    /// 3GPP-SGSN-MCC-MNC: the serving (possibly visited) network.
    pub sgsn_mcc_mnc: Option<Plmn>,
    /// 3GPP-NSAPI (or EPS bearer id).
    pub nsapi: Option<u8>,
    /// 3GPP-Selection-Mode.
    pub selection_mode: Option<u8>,
    /// 3GPP-Charging-Characteristics.
    pub charging_characteristics: Option<&'a str>,
    /// 3GPP-RAT-Type.
    pub rat_type: Option<RatType>,
    /// 3GPP-User-Location-Info.
    pub uli: Option<UserLocationInfo>,
    /// 3GPP-MS-TimeZone.
    pub ms_timezone: Option<MsTimeZone>,
}

impl<'a> Accounting<'a> {
    /// Decodes the fields above from any packet (the code is not checked, so the
    /// caller decides which codes to accept).
    ///
    /// Errors name the first attribute that is present but malformed, including
    /// a 3GPP Vendor-Specific attribute whose sub-attributes do not tile its
    /// value. Other vendors' VSAs are not inspected: some (e.g. Starent) use
    /// layouts other than RFC 2865 §5.26.
    pub fn from_packet(p: &Packet<'a>) -> Result<Accounting<'a>, AttrError> {
        let mut a = Accounting::default();
        let mut in_octets = None;
        let mut in_giga = None;
        let mut out_octets = None;
        let mut out_giga = None;
        let mut offset = crate::MIN_PACKET_LEN;
        for at in p.attributes() {
            let v = at.value;
            let name = attr::name(at.typ).unwrap_or("attribute");
            let here = offset;
            offset += v.len() + 2;
            match at.typ {
                attr::ACCT_STATUS_TYPE => set(&mut a.status_type, || {
                    u32_of(name, v).map(StatusType::from_u32)
                })?,
                attr::ACCT_SESSION_ID => set(&mut a.session_id, || str_of(name, v))?,
                attr::ACCT_MULTI_SESSION_ID => set(&mut a.multi_session_id, || str_of(name, v))?,
                attr::USER_NAME => set(&mut a.user_name, || str_of(name, v))?,
                attr::NAS_IP_ADDRESS => set(&mut a.nas_ip, || ipv4_of(name, v))?,
                attr::NAS_IDENTIFIER => set(&mut a.nas_identifier, || str_of(name, v))?,
                attr::FRAMED_IP_ADDRESS => set(&mut a.framed_ip, || ipv4_of(name, v))?,
                attr::CALLED_STATION_ID => set(&mut a.called_station_id, || str_of(name, v))?,
                attr::CALLING_STATION_ID => set(&mut a.calling_station_id, || str_of(name, v))?,
                attr::ACCT_INPUT_OCTETS => set(&mut in_octets, || u32_of(name, v))?,
                attr::ACCT_OUTPUT_OCTETS => set(&mut out_octets, || u32_of(name, v))?,
                attr::ACCT_INPUT_GIGAWORDS => set(&mut in_giga, || u32_of(name, v))?,
                attr::ACCT_OUTPUT_GIGAWORDS => set(&mut out_giga, || u32_of(name, v))?,
                attr::ACCT_INPUT_PACKETS => set(&mut a.input_packets, || u32_of(name, v))?,
                attr::ACCT_OUTPUT_PACKETS => set(&mut a.output_packets, || u32_of(name, v))?,
                attr::ACCT_SESSION_TIME => set(&mut a.session_time, || u32_of(name, v))?,
                attr::ACCT_TERMINATE_CAUSE => set(&mut a.terminate_cause, || u32_of(name, v))?,
                attr::ACCT_INTERIM_INTERVAL => set(&mut a.interim_interval, || u32_of(name, v))?,
                attr::EVENT_TIMESTAMP => set(&mut a.event_timestamp, || u32_of(name, v))?,
                attr::ACCT_DELAY_TIME => set(&mut a.delay_time, || u32_of(name, v))?,
                attr::VENDOR_SPECIFIC => {
                    if let Some((tgpp::VENDOR_ID, mut subs)) = split_vsa(v) {
                        if subs.is_empty() {
                            return Err(AttrError::MalformedVsa {
                                vendor: tgpp::VENDOR_ID,
                                offset: here,
                            });
                        }
                        while !subs.is_empty() {
                            let Some((typ, value, rest)) = split_tlv(subs) else {
                                return Err(AttrError::MalformedVsa {
                                    vendor: tgpp::VENDOR_ID,
                                    offset: here,
                                });
                            };
                            subs = rest;
                            a.set_3gpp(typ, value)?;
                        }
                    }
                }
                _ => {}
            }
        }
        a.input_octets = combine(in_octets, in_giga);
        a.output_octets = combine(out_octets, out_giga);
        Ok(a)
    }

    fn set_3gpp(&mut self, typ: u8, v: &'a [u8]) -> Result<(), AttrError> {
        match typ {
            tgpp::IMSI => set(&mut self.imsi, || {
                digits_of("3GPP-IMSI", v, 5, 15, "5-15 digits")
            }),
            tgpp::IMEISV => set(&mut self.imeisv, || {
                digits_of("3GPP-IMEISV", v, 14, 16, "14-16 digits")
            }),
            tgpp::CHARGING_ID => set(&mut self.charging_id, || u32_of("3GPP-Charging-ID", v)),
            tgpp::PDP_TYPE => set(&mut self.pdp_type, || u32_of("3GPP-PDP-Type", v)),
            tgpp::SGSN_ADDRESS => set(&mut self.sgsn_address, || ipv4_of("3GPP-SGSN-Address", v)),
            tgpp::GGSN_ADDRESS => set(&mut self.ggsn_address, || ipv4_of("3GPP-GGSN-Address", v)),
            tgpp::IMSI_MCC_MNC => set(&mut self.imsi_mcc_mnc, || plmn_of("3GPP-IMSI-MCC-MNC", v)),
            tgpp::GGSN_MCC_MNC => set(&mut self.ggsn_mcc_mnc, || plmn_of("3GPP-GGSN-MCC-MNC", v)),
            tgpp::SGSN_MCC_MNC => set(&mut self.sgsn_mcc_mnc, || plmn_of("3GPP-SGSN-MCC-MNC", v)),
            tgpp::NSAPI => set(&mut self.nsapi, || nsapi_of(v)),
            tgpp::SELECTION_MODE => set(&mut self.selection_mode, || selection_mode_of(v)),
            tgpp::CHARGING_CHARACTERISTICS => set(&mut self.charging_characteristics, || {
                str_of("3GPP-Charging-Characteristics", v)
            }),
            tgpp::RAT_TYPE => set(&mut self.rat_type, || rat_type_of(v)),
            tgpp::USER_LOCATION_INFO => set(&mut self.uli, || UserLocationInfo::decode(v)),
            tgpp::MS_TIMEZONE => set(&mut self.ms_timezone, || MsTimeZone::decode(v)),
            _ => Ok(()),
        }
    }

    /// Encoding helper for simulators/tests: the same semantic fields back to
    /// attributes, 3GPP ones as one VSA each in FreeRADIUS dictionary.3gpp wire
    /// types. Gigawords are written only when the counter exceeds 32 bits.
    pub fn write_attributes(&self, w: &mut PacketWriter<'_>) -> Result<(), EncodeError> {
        if let Some(s) = self.status_type {
            w.attr_u32(attr::ACCT_STATUS_TYPE, s.as_u32())?;
        }
        put_str(w, attr::ACCT_SESSION_ID, self.session_id)?;
        put_str(w, attr::ACCT_MULTI_SESSION_ID, self.multi_session_id)?;
        put_str(w, attr::USER_NAME, self.user_name)?;
        put_ip(w, attr::NAS_IP_ADDRESS, self.nas_ip)?;
        put_str(w, attr::NAS_IDENTIFIER, self.nas_identifier)?;
        put_ip(w, attr::FRAMED_IP_ADDRESS, self.framed_ip)?;
        put_str(w, attr::CALLED_STATION_ID, self.called_station_id)?;
        put_str(w, attr::CALLING_STATION_ID, self.calling_station_id)?;
        put_counter(
            w,
            attr::ACCT_INPUT_OCTETS,
            attr::ACCT_INPUT_GIGAWORDS,
            self.input_octets,
        )?;
        put_counter(
            w,
            attr::ACCT_OUTPUT_OCTETS,
            attr::ACCT_OUTPUT_GIGAWORDS,
            self.output_octets,
        )?;
        put_u32(w, attr::ACCT_INPUT_PACKETS, self.input_packets)?;
        put_u32(w, attr::ACCT_OUTPUT_PACKETS, self.output_packets)?;
        put_u32(w, attr::ACCT_SESSION_TIME, self.session_time)?;
        put_u32(w, attr::ACCT_TERMINATE_CAUSE, self.terminate_cause)?;
        put_u32(w, attr::ACCT_INTERIM_INTERVAL, self.interim_interval)?;
        put_u32(w, attr::EVENT_TIMESTAMP, self.event_timestamp)?;
        put_u32(w, attr::ACCT_DELAY_TIME, self.delay_time)?;

        let v = tgpp::VENDOR_ID;
        if let Some(s) = self.imsi {
            w.vsa(v, tgpp::IMSI, s.as_bytes())?;
        }
        if let Some(s) = self.imeisv {
            w.vsa(v, tgpp::IMEISV, s.as_bytes())?;
        }
        if let Some(x) = self.charging_id {
            w.vsa(v, tgpp::CHARGING_ID, &x.to_be_bytes())?;
        }
        if let Some(x) = self.pdp_type {
            w.vsa(v, tgpp::PDP_TYPE, &x.to_be_bytes())?;
        }
        if let Some(ip) = self.sgsn_address {
            w.vsa(v, tgpp::SGSN_ADDRESS, &ip.octets())?;
        }
        if let Some(ip) = self.ggsn_address {
            w.vsa(v, tgpp::GGSN_ADDRESS, &ip.octets())?;
        }
        for (typ, plmn) in [
            (tgpp::IMSI_MCC_MNC, self.imsi_mcc_mnc),
            (tgpp::GGSN_MCC_MNC, self.ggsn_mcc_mnc),
            (tgpp::SGSN_MCC_MNC, self.sgsn_mcc_mnc),
        ] {
            if let Some(p) = plmn {
                let (digits, n) = p.ascii_digits();
                w.vsa(v, typ, &digits[..n])?;
            }
        }
        if let Some(n) = self.nsapi {
            let (text, len) = nsapi_text(n);
            w.vsa(v, tgpp::NSAPI, &text[..len])?;
        }
        if let Some(m) = self.selection_mode {
            let (text, len) = decimal_text(m);
            w.vsa(v, tgpp::SELECTION_MODE, &text[..len])?;
        }
        if let Some(s) = self.charging_characteristics {
            w.vsa(v, tgpp::CHARGING_CHARACTERISTICS, s.as_bytes())?;
        }
        if let Some(r) = self.rat_type {
            w.vsa(v, tgpp::RAT_TYPE, &[r.0])?;
        }
        if let Some(uli) = self.uli {
            let (buf, len) = uli.encode_array();
            w.vsa(v, tgpp::USER_LOCATION_INFO, &buf[..len])?;
        }
        if let Some(tz) = self.ms_timezone {
            w.vsa(v, tgpp::MS_TIMEZONE, &tz.encode())?;
        }
        Ok(())
    }
}

/// Keeps the first occurrence: later duplicates are neither decoded nor checked.
fn set<T>(
    slot: &mut Option<T>,
    decode: impl FnOnce() -> Result<T, AttrError>,
) -> Result<(), AttrError> {
    if slot.is_none() {
        *slot = Some(decode()?);
    }
    Ok(())
}

fn combine(octets: Option<u32>, gigawords: Option<u32>) -> Option<u64> {
    match (octets, gigawords) {
        (None, None) => None,
        (o, g) => Some(u64::from(g.unwrap_or(0)) << 32 | u64::from(o.unwrap_or(0))),
    }
}

fn u32_of(name: &'static str, v: &[u8]) -> Result<u32, AttrError> {
    match *v {
        [a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(AttrError::Length {
            attr: name,
            len: v.len(),
            expected: "4",
        }),
    }
}

fn ipv4_of(name: &'static str, v: &[u8]) -> Result<Ipv4Addr, AttrError> {
    match *v {
        [a, b, c, d] => Ok(Ipv4Addr::new(a, b, c, d)),
        _ => Err(AttrError::Length {
            attr: name,
            len: v.len(),
            expected: "4",
        }),
    }
}

fn str_of<'a>(name: &'static str, v: &'a [u8]) -> Result<&'a str, AttrError> {
    std::str::from_utf8(v).map_err(|_| AttrError::NotUtf8 { attr: name })
}

fn invalid(name: &'static str, v: &[u8], expected: &'static str) -> AttrError {
    AttrError::Invalid {
        attr: name,
        value: String::from_utf8_lossy(v).chars().take(64).collect(),
        expected,
    }
}

fn digits_of<'a>(
    name: &'static str,
    v: &'a [u8],
    min: usize,
    max: usize,
    expected: &'static str,
) -> Result<&'a str, AttrError> {
    if (min..=max).contains(&v.len()) && v.iter().all(u8::is_ascii_digit) {
        str_of(name, v)
    } else {
        Err(invalid(name, v, expected))
    }
}

/// TS 29.061 sends MCC-MNC as digit text; 3 octets can never be valid text, so
/// a 3-octet value is read as the BCD PLMN some gateways send instead.
fn plmn_of(name: &'static str, v: &[u8]) -> Result<Plmn, AttrError> {
    if let &[a, b, c] = v {
        return Plmn::from_bcd(&[a, b, c]).ok_or(AttrError::BadPlmn {
            attr: name,
            bcd: [a, b, c],
        });
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(Plmn::parse)
        .ok_or_else(|| invalid(name, v, "5 or 6 MCC+MNC digits"))
}

/// One hex digit character per TS 29.061 ("5"), or decimal text for values
/// above 15; a raw octet below 16 is accepted too since it cannot be confused
/// with a character.
fn nsapi_of(v: &[u8]) -> Result<u8, AttrError> {
    const NAME: &str = "3GPP-NSAPI";
    match *v {
        [c] if c < 0x10 => Ok(c),
        [c] => char::from(c)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| invalid(NAME, v, "a hex digit")),
        _ => decimal_of(v).ok_or_else(|| invalid(NAME, v, "a hex digit")),
    }
}

fn selection_mode_of(v: &[u8]) -> Result<u8, AttrError> {
    match *v {
        [c] if c < 10 => Ok(c),
        _ => decimal_of(v).ok_or_else(|| invalid("3GPP-Selection-Mode", v, "a decimal digit")),
    }
}

fn decimal_of(v: &[u8]) -> Option<u8> {
    if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
    u8::try_from(n).ok()
}

/// The dictionary type is one octet, but some gateways send a 4-octet integer.
fn rat_type_of(v: &[u8]) -> Result<RatType, AttrError> {
    match *v {
        [r] => Ok(RatType(r)),
        [0, 0, 0, r] => Ok(RatType(r)),
        [_, _, _, _] => Err(invalid("3GPP-RAT-Type", v, "a RAT type below 256")),
        _ => Err(AttrError::Length {
            attr: "3GPP-RAT-Type",
            len: v.len(),
            expected: "1 or 4",
        }),
    }
}

fn nsapi_text(n: u8) -> ([u8; 3], usize) {
    if n < 16 {
        let c = b"0123456789ABCDEF"[usize::from(n)];
        ([c, 0, 0], 1)
    } else {
        decimal_text(n)
    }
}

fn decimal_text(n: u8) -> ([u8; 3], usize) {
    let (h, t, u) = (n / 100, n / 10 % 10, n % 10);
    match n {
        0..=9 => ([b'0' + u, 0, 0], 1),
        10..=99 => ([b'0' + t, b'0' + u, 0], 2),
        _ => ([b'0' + h, b'0' + t, b'0' + u], 3),
    }
}

fn put_str(w: &mut PacketWriter<'_>, typ: u8, v: Option<&str>) -> Result<(), EncodeError> {
    if let Some(s) = v {
        w.attr_str(typ, s)?;
    }
    Ok(())
}

fn put_ip(w: &mut PacketWriter<'_>, typ: u8, v: Option<Ipv4Addr>) -> Result<(), EncodeError> {
    if let Some(ip) = v {
        w.attr_ipv4(typ, ip)?;
    }
    Ok(())
}

fn put_u32(w: &mut PacketWriter<'_>, typ: u8, v: Option<u32>) -> Result<(), EncodeError> {
    if let Some(x) = v {
        w.attr_u32(typ, x)?;
    }
    Ok(())
}

fn put_counter(
    w: &mut PacketWriter<'_>,
    octets: u8,
    gigawords: u8,
    v: Option<u64>,
) -> Result<(), EncodeError> {
    if let Some(x) = v {
        w.attr_u32(octets, x as u32)?;
        let high = (x >> 32) as u32;
        if high != 0 {
            w.attr_u32(gigawords, high)?;
        }
    }
    Ok(())
}
