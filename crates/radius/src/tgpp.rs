//! 3GPP TS 29.061 §16.4.7 vendor-specific attributes (vendor 10415), with the
//! binary layouts of 3GPP-User-Location-Info (§16.4.7.2, sub-attribute 22) and
//! 3GPP-MS-TimeZone (sub-attribute 23, coded per TS 24.008 §10.5.3.8).

use std::fmt;

use crate::AttrError;

/// IANA enterprise number of 3GPP.
pub const VENDOR_ID: u32 = 10415;

/// 3GPP-IMSI, string of digits.
pub const IMSI: u8 = 1;
/// 3GPP-Charging-ID, integer.
pub const CHARGING_ID: u8 = 2;
/// 3GPP-PDP-Type, integer (0 IPv4, 1 PPP, 2 IPv6, 3 IPv4v6, 4 Non-IP, ...).
pub const PDP_TYPE: u8 = 3;
/// 3GPP-Charging-Gateway-Address, IPv4 address.
pub const CG_ADDRESS: u8 = 4;
/// 3GPP-GPRS-Negotiated-QoS-profile, string.
pub const GPRS_NEGOTIATED_QOS: u8 = 5;
/// 3GPP-SGSN-Address (SGSN or S-GW), IPv4 address.
pub const SGSN_ADDRESS: u8 = 6;
/// 3GPP-GGSN-Address (GGSN or P-GW), IPv4 address.
pub const GGSN_ADDRESS: u8 = 7;
/// 3GPP-IMSI-MCC-MNC, string of 5 or 6 digits.
pub const IMSI_MCC_MNC: u8 = 8;
/// 3GPP-GGSN-MCC-MNC, string of 5 or 6 digits.
pub const GGSN_MCC_MNC: u8 = 9;
/// 3GPP-NSAPI, one hex-digit character.
pub const NSAPI: u8 = 10;
/// 3GPP-Session-Stop-Indicator, one octet.
pub const SESSION_STOP_INDICATOR: u8 = 11;
/// 3GPP-Selection-Mode, one digit character.
pub const SELECTION_MODE: u8 = 12;
/// 3GPP-Charging-Characteristics, string of 4 hex digits.
pub const CHARGING_CHARACTERISTICS: u8 = 13;
/// 3GPP-Charging-Gateway-IPv6-Address.
pub const CG_IPV6_ADDRESS: u8 = 14;
/// 3GPP-SGSN-IPv6-Address.
pub const SGSN_IPV6_ADDRESS: u8 = 15;
/// 3GPP-GGSN-IPv6-Address.
pub const GGSN_IPV6_ADDRESS: u8 = 16;
/// 3GPP-IPv6-DNS-Servers.
pub const IPV6_DNS_SERVERS: u8 = 17;
/// 3GPP-SGSN-MCC-MNC, string of 5 or 6 digits.
pub const SGSN_MCC_MNC: u8 = 18;
/// 3GPP-Teardown-Indicator, one octet.
pub const TEARDOWN_INDICATOR: u8 = 19;
/// 3GPP-IMEISV, string of 15 (IMEI) or 16 (IMEISV) digits.
pub const IMEISV: u8 = 20;
/// 3GPP-RAT-Type, one octet.
pub const RAT_TYPE: u8 = 21;
/// 3GPP-User-Location-Info, octets.
pub const USER_LOCATION_INFO: u8 = 22;
/// 3GPP-MS-TimeZone, two octets.
pub const MS_TIMEZONE: u8 = 23;
/// 3GPP-CAMEL-Charging-Info.
pub const CAMEL_CHARGING_INFO: u8 = 24;
/// 3GPP-Packet-Filter.
pub const PACKET_FILTER: u8 = 25;
/// 3GPP-Negotiated-DSCP.
pub const NEGOTIATED_DSCP: u8 = 26;
/// 3GPP-Allocate-IP-Type.
pub const ALLOCATE_IP_TYPE: u8 = 27;

/// A PLMN identity. `mnc_digits` is 2 or 3 because MNC "01" and "001" are
/// different networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plmn {
    /// Mobile country code, 0..=999.
    pub mcc: u16,
    /// Mobile network code, 0..=99 or 0..=999 depending on `mnc_digits`.
    pub mnc: u16,
    /// 2 or 3.
    pub mnc_digits: u8,
}

impl Plmn {
    /// A PLMN if the values are in range.
    pub fn new(mcc: u16, mnc: u16, mnc_digits: u8) -> Option<Plmn> {
        let mnc_max = match mnc_digits {
            2 => 99,
            3 => 999,
            _ => return None,
        };
        (mcc <= 999 && mnc <= mnc_max).then_some(Plmn {
            mcc,
            mnc,
            mnc_digits,
        })
    }

    /// Decodes the TS 24.008 §10.5.1.3 layout: byte1 = MCC2<<4 | MCC1, byte2 =
    /// MNC3<<4 | MCC3 (MNC3 = 0xF for two-digit MNCs), byte3 = MNC2<<4 | MNC1.
    pub fn from_bcd(b: &[u8; 3]) -> Option<Plmn> {
        let digit = |n: u8| (n <= 9).then_some(u16::from(n));
        let mcc = digit(b[0] & 0x0f)? * 100 + digit(b[0] >> 4)? * 10 + digit(b[1] & 0x0f)?;
        let mnc12 = digit(b[2] & 0x0f)? * 10 + digit(b[2] >> 4)?;
        match b[1] >> 4 {
            0x0f => Plmn::new(mcc, mnc12, 2),
            d3 => Plmn::new(mcc, mnc12 * 10 + digit(d3)?, 3),
        }
    }

    /// Encodes as [`Plmn::from_bcd`] reads. Out-of-range fields (only possible by
    /// building the struct directly) are reduced digit-wise modulo 10.
    pub fn to_bcd(&self) -> [u8; 3] {
        let [m1, m2, m3] = three_digits(self.mcc);
        let (n1, n2, n3) = if self.mnc_digits == 3 {
            let [a, b, c] = three_digits(self.mnc);
            (a, b, c)
        } else {
            let [_, a, b] = three_digits(self.mnc);
            (a, b, 0x0f)
        };
        [m2 << 4 | m1, n3 << 4 | m3, n2 << 4 | n1]
    }

    /// Parses the digit string 3GPP-*-MCC-MNC attributes carry: MCC then MNC,
    /// 5 digits for a two-digit MNC ("90170"), 6 for three ("310410").
    pub fn parse(s: &str) -> Option<Plmn> {
        let b = s.as_bytes();
        if !(b.len() == 5 || b.len() == 6) || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |d: &[u8]| d.iter().fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
        Plmn::new(num(&b[..3]), num(&b[3..]), (b.len() - 3) as u8)
    }

    /// MCC as three digits, e.g. "001".
    pub fn mcc_string(&self) -> String {
        format!("{:03}", self.mcc)
    }

    /// MNC with its significant digit count, e.g. "01" or "001".
    pub fn mnc_string(&self) -> String {
        if self.mnc_digits == 3 {
            format!("{:03}", self.mnc)
        } else {
            format!("{:02}", self.mnc)
        }
    }

    /// MCC and MNC digits as ASCII without allocating; returns the buffer and the
    /// number of digits used (5 or 6).
    pub(crate) fn ascii_digits(&self) -> ([u8; 6], usize) {
        let [a, b, c] = three_digits(self.mcc);
        let [d, e, f] = three_digits(self.mnc);
        if self.mnc_digits == 3 {
            ([a, b, c, d, e, f].map(|x| x + b'0'), 6)
        } else {
            ([a, b, c, e, f, 0].map(|x| x + b'0'), 5)
        }
    }
}

fn three_digits(v: u16) -> [u8; 3] {
    [(v / 100 % 10) as u8, (v / 10 % 10) as u8, (v % 10) as u8]
}

impl fmt::Display for Plmn {
    /// "262-01", "310-410".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mnc_digits == 3 {
            write!(f, "{:03}-{:03}", self.mcc, self.mnc)
        } else {
            write!(f, "{:03}-{:02}", self.mcc, self.mnc)
        }
    }
}

/// 3GPP-User-Location-Info (TS 29.061 §16.4.7.2): a Geographic Location Type
/// octet followed by the location in TS 29.274 §8.21 coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLocationInfo {
    /// Type 0: Cell Global Identity (2G).
    Cgi {
        /// Cell PLMN.
        plmn: Plmn,
        /// Location Area Code.
        lac: u16,
        /// Cell Identity.
        ci: u16,
    },
    /// Type 1: Service Area Identity (3G).
    Sai {
        /// Cell PLMN.
        plmn: Plmn,
        /// Location Area Code.
        lac: u16,
        /// Service Area Code.
        sac: u16,
    },
    /// Type 2: Routing Area Identity.
    Rai {
        /// Cell PLMN.
        plmn: Plmn,
        /// Location Area Code.
        lac: u16,
        /// Routing Area Code.
        rac: u8,
    },
    /// Type 128: Tracking Area Identity (LTE).
    Tai {
        /// Tracking area PLMN.
        plmn: Plmn,
        /// Tracking Area Code.
        tac: u16,
    },
    /// Type 129: E-UTRAN Cell Global Identity.
    Ecgi {
        /// Cell PLMN.
        plmn: Plmn,
        /// 28-bit E-UTRAN Cell Identifier (eNodeB id << 8 | cell).
        eci: u32,
    },
    /// Type 130: TAI followed by ECGI, what LTE P-GWs usually send.
    TaiEcgi {
        /// Tracking area PLMN.
        tai_plmn: Plmn,
        /// Tracking Area Code.
        tac: u16,
        /// Cell PLMN.
        ecgi_plmn: Plmn,
        /// 28-bit E-UTRAN Cell Identifier.
        eci: u32,
    },
    /// Type 135: NR Cell Global Identity. The 36-bit NCI sits in the low bits of
    /// five octets after the PLMN, the upper four bits spare, as for the ECI.
    Ncgi {
        /// Cell PLMN.
        plmn: Plmn,
        /// 36-bit NR Cell Identity.
        nci: u64,
    },
    /// Type 136: 5GS Tracking Area Identity with a 3-octet TAC.
    FiveGsTai {
        /// Tracking area PLMN.
        plmn: Plmn,
        /// 24-bit 5GS Tracking Area Code.
        tac: u32,
    },
    /// A Geographic Location Type this crate does not decode (e.g. 131-134 eNodeB
    /// ids, 137-139 combined 5GS types).
    Other {
        /// The Geographic Location Type octet.
        typ: u8,
    },
}

const ULI: &str = "3GPP-User-Location-Info";

const ULI_CGI: u8 = 0;
const ULI_SAI: u8 = 1;
const ULI_RAI: u8 = 2;
const ULI_TAI: u8 = 128;
const ULI_ECGI: u8 = 129;
const ULI_TAI_ECGI: u8 = 130;
const ULI_NCGI: u8 = 135;
const ULI_5GS_TAI: u8 = 136;

const ECI_MASK: u32 = 0x0fff_ffff;
const NCI_MASK: u64 = 0x0f_ffff_ffff;

impl UserLocationInfo {
    /// Decodes the attribute value (Geographic Location Type octet first). The
    /// spare high bits of ECI/NCI are ignored; lengths must match the type exactly,
    /// except that RAI may omit the spare octet after the RAC.
    pub fn decode(v: &[u8]) -> Result<Self, AttrError> {
        let Some((&typ, body)) = v.split_first() else {
            return Err(AttrError::Length {
                attr: ULI,
                len: 0,
                expected: "at least 1",
            });
        };
        let need = |n: usize| -> Result<(), AttrError> {
            if v.len() == n {
                Ok(())
            } else {
                Err(AttrError::UliLength {
                    typ,
                    expected: n,
                    got: v.len(),
                })
            }
        };
        let be16 = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
        let be32 =
            |at: usize| u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        Ok(match typ {
            ULI_CGI => {
                need(8)?;
                UserLocationInfo::Cgi {
                    plmn: plmn_at(body, 0)?,
                    lac: be16(3),
                    ci: be16(5),
                }
            }
            ULI_SAI => {
                need(8)?;
                UserLocationInfo::Sai {
                    plmn: plmn_at(body, 0)?,
                    lac: be16(3),
                    sac: be16(5),
                }
            }
            ULI_RAI => {
                if v.len() != 7 {
                    need(8)?;
                }
                UserLocationInfo::Rai {
                    plmn: plmn_at(body, 0)?,
                    lac: be16(3),
                    rac: body[5],
                }
            }
            ULI_TAI => {
                need(6)?;
                UserLocationInfo::Tai {
                    plmn: plmn_at(body, 0)?,
                    tac: be16(3),
                }
            }
            ULI_ECGI => {
                need(8)?;
                UserLocationInfo::Ecgi {
                    plmn: plmn_at(body, 0)?,
                    eci: be32(3) & ECI_MASK,
                }
            }
            ULI_TAI_ECGI => {
                need(13)?;
                UserLocationInfo::TaiEcgi {
                    tai_plmn: plmn_at(body, 0)?,
                    tac: be16(3),
                    ecgi_plmn: plmn_at(body, 5)?,
                    eci: be32(8) & ECI_MASK,
                }
            }
            ULI_NCGI => {
                need(9)?;
                let nci = body[3..8]
                    .iter()
                    .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
                UserLocationInfo::Ncgi {
                    plmn: plmn_at(body, 0)?,
                    nci: nci & NCI_MASK,
                }
            }
            ULI_5GS_TAI => {
                need(7)?;
                UserLocationInfo::FiveGsTai {
                    plmn: plmn_at(body, 0)?,
                    tac: u32::from_be_bytes([0, body[3], body[4], body[5]]),
                }
            }
            typ => UserLocationInfo::Other { typ },
        })
    }

    /// Appends the attribute value as [`decode`](Self::decode) reads it. RAI gets
    /// the spare 0xFF octet; identifiers wider than their field are truncated.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (buf, len) = self.encode_array();
        out.extend_from_slice(&buf[..len]);
    }

    /// Encodes without allocating: the value is `buf[..len]`.
    pub(crate) fn encode_array(&self) -> ([u8; 16], usize) {
        let mut buf = [0u8; 16];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        match *self {
            UserLocationInfo::Cgi { plmn, lac, ci } => {
                put(&[ULI_CGI]);
                put(&plmn.to_bcd());
                put(&lac.to_be_bytes());
                put(&ci.to_be_bytes());
            }
            UserLocationInfo::Sai { plmn, lac, sac } => {
                put(&[ULI_SAI]);
                put(&plmn.to_bcd());
                put(&lac.to_be_bytes());
                put(&sac.to_be_bytes());
            }
            UserLocationInfo::Rai { plmn, lac, rac } => {
                put(&[ULI_RAI]);
                put(&plmn.to_bcd());
                put(&lac.to_be_bytes());
                put(&[rac, 0xff]);
            }
            UserLocationInfo::Tai { plmn, tac } => {
                put(&[ULI_TAI]);
                put(&plmn.to_bcd());
                put(&tac.to_be_bytes());
            }
            UserLocationInfo::Ecgi { plmn, eci } => {
                put(&[ULI_ECGI]);
                put(&plmn.to_bcd());
                put(&(eci & ECI_MASK).to_be_bytes());
            }
            UserLocationInfo::TaiEcgi {
                tai_plmn,
                tac,
                ecgi_plmn,
                eci,
            } => {
                put(&[ULI_TAI_ECGI]);
                put(&tai_plmn.to_bcd());
                put(&tac.to_be_bytes());
                put(&ecgi_plmn.to_bcd());
                put(&(eci & ECI_MASK).to_be_bytes());
            }
            UserLocationInfo::Ncgi { plmn, nci } => {
                put(&[ULI_NCGI]);
                put(&plmn.to_bcd());
                put(&(nci & NCI_MASK).to_be_bytes()[3..]);
            }
            UserLocationInfo::FiveGsTai { plmn, tac } => {
                put(&[ULI_5GS_TAI]);
                put(&plmn.to_bcd());
                put(&tac.to_be_bytes()[1..]);
            }
            UserLocationInfo::Other { typ } => put(&[typ]),
        }
        (buf, len)
    }

    /// The PLMN of the serving cell (for TAI+ECGI the ECGI's), or of the tracking
    /// area when no cell is given. `None` for [`UserLocationInfo::Other`].
    pub fn plmn(&self) -> Option<Plmn> {
        match *self {
            UserLocationInfo::Cgi { plmn, .. }
            | UserLocationInfo::Sai { plmn, .. }
            | UserLocationInfo::Rai { plmn, .. }
            | UserLocationInfo::Tai { plmn, .. }
            | UserLocationInfo::Ecgi { plmn, .. }
            | UserLocationInfo::Ncgi { plmn, .. }
            | UserLocationInfo::FiveGsTai { plmn, .. } => Some(plmn),
            UserLocationInfo::TaiEcgi { ecgi_plmn, .. } => Some(ecgi_plmn),
            UserLocationInfo::Other { .. } => None,
        }
    }
}

fn plmn_at(body: &[u8], at: usize) -> Result<Plmn, AttrError> {
    let bcd = [body[at], body[at + 1], body[at + 2]];
    Plmn::from_bcd(&bcd).ok_or(AttrError::BadPlmn { attr: ULI, bcd })
}

/// 3GPP-RAT-Type values (TS 29.061 §16.4.7.2, same numbering as TS 29.274 §8.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RatType(pub u8);

impl RatType {
    /// 3G.
    pub const UTRAN: RatType = RatType(1);
    /// 2G.
    pub const GERAN: RatType = RatType(2);
    /// Non-3GPP WLAN.
    pub const WLAN: RatType = RatType(3);
    /// Generic Access Network.
    pub const GAN: RatType = RatType(4);
    /// HSPA Evolution.
    pub const HSPA_EVOLUTION: RatType = RatType(5);
    /// LTE.
    pub const EUTRAN: RatType = RatType(6);
    /// Virtual.
    pub const VIRTUAL: RatType = RatType(7);
    /// EUTRAN-NB-IoT.
    pub const NB_IOT: RatType = RatType(8);
    /// LTE-M (Cat-M1).
    pub const LTE_M: RatType = RatType(9);
    /// 5G New Radio.
    pub const NR: RatType = RatType(10);

    /// Display name; values outside the 3GPP and FreeRADIUS lists are "unknown".
    pub fn name(&self) -> &'static str {
        match self.0 {
            1 => "UTRAN",
            2 => "GERAN",
            3 => "WLAN",
            4 => "GAN",
            5 => "HSPA-Evolution",
            6 => "EUTRAN",
            7 => "Virtual",
            8 => "NB-IoT",
            9 => "LTE-M",
            10 => "NR",
            101 => "IEEE-802.16e",
            102 => "3GPP2-eHRPD",
            103 => "3GPP2-HRPD",
            104 => "3GPP2-1xRTT",
            _ => "unknown",
        }
    }
}

/// 3GPP-MS-TimeZone: the UE's offset from UTC and the daylight-saving adjustment
/// already included in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsTimeZone {
    /// Offset from UTC in minutes; a multiple of 15 within ±1185 (79 quarters).
    pub offset_minutes: i16,
    /// Daylight saving adjustment, 0..=2 hours.
    pub dst_hours: u8,
}

const MS_TZ: &str = "3GPP-MS-TimeZone";

impl MsTimeZone {
    /// Decodes TS 24.008 §10.5.3.8: octet 1 holds quarter hours as swapped-nibble
    /// BCD (tens in the low nibble, units in the high one) with bit 3 (the top
    /// bit of the tens nibble) as the sign; octet 2's low two bits are the DST
    /// adjustment in hours.
    pub fn decode(v: &[u8]) -> Result<Self, AttrError> {
        let &[tz, dst] = v else {
            return Err(AttrError::Length {
                attr: MS_TZ,
                len: v.len(),
                expected: "2",
            });
        };
        let tens = tz & 0x07;
        let units = tz >> 4;
        if units > 9 {
            return Err(AttrError::Invalid {
                attr: MS_TZ,
                value: format!("0x{tz:02x}{dst:02x}"),
                expected: "a BCD quarter-hour offset",
            });
        }
        let dst_hours = dst & 0x03;
        if dst_hours == 3 {
            return Err(AttrError::Invalid {
                attr: MS_TZ,
                value: format!("0x{tz:02x}{dst:02x}"),
                expected: "a daylight saving adjustment of 0-2 hours",
            });
        }
        let minutes = i16::from(tens * 10 + units) * 15;
        Ok(MsTimeZone {
            offset_minutes: if tz & 0x08 != 0 { -minutes } else { minutes },
            dst_hours,
        })
    }

    /// Encodes as [`decode`](Self::decode) reads. Offsets are truncated to whole
    /// quarter hours and clamped to the 79 quarters the coding can hold.
    pub fn encode(&self) -> [u8; 2] {
        let quarters = (self.offset_minutes / 15).unsigned_abs().min(79) as u8;
        let sign = if self.offset_minutes < 0 && quarters > 0 {
            0x08
        } else {
            0
        };
        [
            ((quarters % 10) << 4) | sign | (quarters / 10),
            self.dst_hours & 0x03,
        ]
    }
}
