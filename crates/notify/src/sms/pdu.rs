//! SMPP 3.4 PDUs: bytes in, values out, no I/O.
//!
//! Only the operations an ESME bound as a transceiver needs are decoded
//! into fields; any other command decodes to [`Body::Other`] so the session
//! can answer it with generic_nack instead of dropping the connection.

use thiserror::Error;

/// The 16-octet header every PDU starts with.
pub const HEADER_LEN: usize = 16;
/// Largest PDU we accept. A deliver_sm with a full message_payload stays far
/// below this; anything larger is a broken peer, not a message.
pub const MAX_PDU_LEN: usize = 64 * 1024;
/// The interface_version of SMPP 3.4.
pub const INTERFACE_VERSION: u8 = 0x34;

pub mod cmd {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
    /// Responses have this bit set; a request's response id is `id | RESP`.
    pub const RESP: u32 = 0x8000_0000;
}

/// TLV tags we read or write.
pub mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
}

/// Maximum C-Octet String sizes of SMPP 3.4 section 5.2, including the NUL.
mod max {
    pub const SYSTEM_ID: usize = 16;
    pub const PASSWORD: usize = 9;
    pub const SYSTEM_TYPE: usize = 13;
    pub const ADDRESS_RANGE: usize = 41;
    pub const SERVICE_TYPE: usize = 6;
    pub const ADDR: usize = 21;
    pub const TIME: usize = 17;
    pub const MESSAGE_ID: usize = 65;
    pub const SHORT_MESSAGE: usize = 254;
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PduError {
    #[error("command_length {0} outside 16..={MAX_PDU_LEN}")]
    BadLength(usize),
    #[error("PDU truncated in {0}")]
    Truncated(&'static str),
    #[error("{field} is {len} octets, at most {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} holds a NUL octet")]
    InteriorNul(&'static str),
}

/// A source or destination address with its type of number and numbering
/// plan indicator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// An optional parameter, kept raw: the session interprets the few it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

/// bind_transceiver (and the other binds, which share its layout).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

/// submit_sm and deliver_sm: SMPP 3.4 gives both the same mandatory fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sm {
    pub service_type: String,
    pub source: Address,
    pub dest: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl Sm {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    BindTransceiver(Bind),
    /// `system_id` of the SMSC; empty when an error response left it out.
    BindTransceiverResp {
        system_id: String,
        tlvs: Vec<Tlv>,
    },
    SubmitSm(Sm),
    /// `message_id` is empty when an error response left it out.
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(Sm),
    DeliverSmResp {
        message_id: String,
    },
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
    /// A command this ESME does not implement, body kept raw.
    Other {
        command_id: u32,
        body: Vec<u8>,
    },
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::BindTransceiver(_) => cmd::BIND_TRANSCEIVER,
            Body::BindTransceiverResp { .. } => cmd::BIND_TRANSCEIVER_RESP,
            Body::SubmitSm(_) => cmd::SUBMIT_SM,
            Body::SubmitSmResp { .. } => cmd::SUBMIT_SM_RESP,
            Body::DeliverSm(_) => cmd::DELIVER_SM,
            Body::DeliverSmResp { .. } => cmd::DELIVER_SM_RESP,
            Body::EnquireLink => cmd::ENQUIRE_LINK,
            Body::EnquireLinkResp => cmd::ENQUIRE_LINK_RESP,
            Body::Unbind => cmd::UNBIND,
            Body::UnbindResp => cmd::UNBIND_RESP,
            Body::GenericNack => cmd::GENERIC_NACK,
            Body::Other { command_id, .. } => *command_id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub command_status: u32,
    pub sequence_number: u32,
    pub body: Body,
}

impl Pdu {
    pub fn new(sequence_number: u32, body: Body) -> Self {
        Pdu {
            command_status: 0,
            sequence_number,
            body,
        }
    }

    pub fn command_id(&self) -> u32 {
        self.body.command_id()
    }

    pub fn is_response(&self) -> bool {
        self.command_id() & cmd::RESP != 0
    }

    /// Serializes the PDU. Fails only on fields longer than SMPP allows, so
    /// a bad configuration or recipient surfaces as an error, not as a PDU
    /// the SMSC rejects with a puzzling status.
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut w = Vec::with_capacity(64);
        w.extend_from_slice(&[0; 4]);
        w.extend_from_slice(&self.command_id().to_be_bytes());
        w.extend_from_slice(&self.command_status.to_be_bytes());
        w.extend_from_slice(&self.sequence_number.to_be_bytes());
        match &self.body {
            Body::BindTransceiver(b) => {
                put_cstr(&mut w, "system_id", &b.system_id, max::SYSTEM_ID)?;
                put_cstr(&mut w, "password", &b.password, max::PASSWORD)?;
                put_cstr(&mut w, "system_type", &b.system_type, max::SYSTEM_TYPE)?;
                w.extend_from_slice(&[b.interface_version, b.addr_ton, b.addr_npi]);
                put_cstr(
                    &mut w,
                    "address_range",
                    &b.address_range,
                    max::ADDRESS_RANGE,
                )?;
            }
            Body::BindTransceiverResp { system_id, tlvs } => {
                put_cstr(&mut w, "system_id", system_id, max::SYSTEM_ID)?;
                put_tlvs(&mut w, tlvs)?;
            }
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => put_sm(&mut w, sm)?,
            Body::SubmitSmResp { message_id } | Body::DeliverSmResp { message_id } => {
                put_cstr(&mut w, "message_id", message_id, max::MESSAGE_ID)?;
            }
            Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::Unbind
            | Body::UnbindResp
            | Body::GenericNack => {}
            Body::Other { body, .. } => w.extend_from_slice(body),
        }
        if w.len() > MAX_PDU_LEN {
            return Err(PduError::BadLength(w.len()));
        }
        let len = (w.len() as u32).to_be_bytes();
        w[..4].copy_from_slice(&len);
        Ok(w)
    }

    /// Decodes one whole PDU (`buf` is exactly `command_length` octets, as
    /// [`frame_len`] delimits it).
    pub fn decode(buf: &[u8]) -> Result<Pdu, PduError> {
        let header = Header::parse(buf)?;
        if buf.len() != header.command_length {
            return Err(PduError::Truncated("command_length"));
        }
        let mut r = Reader {
            buf: &buf[HEADER_LEN..],
        };
        let body = match header.command_id {
            cmd::BIND_TRANSCEIVER => Body::BindTransceiver(Bind {
                system_id: r.cstr("system_id", max::SYSTEM_ID)?,
                password: r.cstr("password", max::PASSWORD)?,
                system_type: r.cstr("system_type", max::SYSTEM_TYPE)?,
                interface_version: r.u8("interface_version")?,
                addr_ton: r.u8("addr_ton")?,
                addr_npi: r.u8("addr_npi")?,
                address_range: r.cstr("address_range", max::ADDRESS_RANGE)?,
            }),
            // SMPP 3.4 lets an error response omit its body, so an empty
            // body is a valid response, not a truncated one.
            cmd::BIND_TRANSCEIVER_RESP => Body::BindTransceiverResp {
                system_id: r.cstr_or_empty("system_id", max::SYSTEM_ID)?,
                tlvs: r.tlvs()?,
            },
            cmd::SUBMIT_SM => Body::SubmitSm(r.sm()?),
            cmd::DELIVER_SM => Body::DeliverSm(r.sm()?),
            cmd::SUBMIT_SM_RESP => Body::SubmitSmResp {
                message_id: r.cstr_or_empty("message_id", max::MESSAGE_ID)?,
            },
            cmd::DELIVER_SM_RESP => Body::DeliverSmResp {
                message_id: r.cstr_or_empty("message_id", max::MESSAGE_ID)?,
            },
            cmd::ENQUIRE_LINK => Body::EnquireLink,
            cmd::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
            cmd::UNBIND => Body::Unbind,
            cmd::UNBIND_RESP => Body::UnbindResp,
            cmd::GENERIC_NACK => Body::GenericNack,
            other => Body::Other {
                command_id: other,
                body: r.buf.to_vec(),
            },
        };
        Ok(Pdu {
            command_status: header.command_status,
            sequence_number: header.sequence_number,
            body,
        })
    }
}

/// The fixed header, readable even when the body is not, so a malformed
/// request can still be answered with a generic_nack carrying its sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub command_length: usize,
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

impl Header {
    pub fn parse(buf: &[u8]) -> Result<Header, PduError> {
        let Some(len) = frame_len(buf)? else {
            return Err(PduError::Truncated("header"));
        };
        if buf.len() < HEADER_LEN {
            return Err(PduError::Truncated("header"));
        }
        Ok(Header {
            command_length: len,
            command_id: be32(&buf[4..8]),
            command_status: be32(&buf[8..12]),
            sequence_number: be32(&buf[12..16]),
        })
    }
}

/// Length of the PDU at the start of `buf`, once its command_length is
/// there. A length outside 16..=[`MAX_PDU_LEN`] cannot be resynchronized
/// from, so it is an error (the session drops the connection).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, PduError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = be32(&buf[..4]) as usize;
    if !(HEADER_LEN..=MAX_PDU_LEN).contains(&len) {
        return Err(PduError::BadLength(len));
    }
    Ok(Some(len))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn put_cstr(w: &mut Vec<u8>, field: &'static str, s: &str, max: usize) -> Result<(), PduError> {
    if s.len() + 1 > max {
        return Err(PduError::TooLong {
            field,
            len: s.len(),
            max: max - 1,
        });
    }
    if s.as_bytes().contains(&0) {
        return Err(PduError::InteriorNul(field));
    }
    w.extend_from_slice(s.as_bytes());
    w.push(0);
    Ok(())
}

fn put_addr(w: &mut Vec<u8>, field: &'static str, a: &Address) -> Result<(), PduError> {
    w.extend_from_slice(&[a.ton, a.npi]);
    put_cstr(w, field, &a.addr, max::ADDR)
}

fn put_sm(w: &mut Vec<u8>, sm: &Sm) -> Result<(), PduError> {
    put_cstr(w, "service_type", &sm.service_type, max::SERVICE_TYPE)?;
    put_addr(w, "source_addr", &sm.source)?;
    put_addr(w, "destination_addr", &sm.dest)?;
    w.extend_from_slice(&[sm.esm_class, sm.protocol_id, sm.priority_flag]);
    put_cstr(
        w,
        "schedule_delivery_time",
        &sm.schedule_delivery_time,
        max::TIME,
    )?;
    put_cstr(w, "validity_period", &sm.validity_period, max::TIME)?;
    w.extend_from_slice(&[
        sm.registered_delivery,
        sm.replace_if_present_flag,
        sm.data_coding,
        sm.sm_default_msg_id,
    ]);
    if sm.short_message.len() > max::SHORT_MESSAGE {
        return Err(PduError::TooLong {
            field: "short_message",
            len: sm.short_message.len(),
            max: max::SHORT_MESSAGE,
        });
    }
    w.push(sm.short_message.len() as u8);
    w.extend_from_slice(&sm.short_message);
    put_tlvs(w, &sm.tlvs)
}

fn put_tlvs(w: &mut Vec<u8>, tlvs: &[Tlv]) -> Result<(), PduError> {
    for t in tlvs {
        let len = u16::try_from(t.value.len()).map_err(|_| PduError::TooLong {
            field: "TLV value",
            len: t.value.len(),
            max: u16::MAX as usize,
        })?;
        w.extend_from_slice(&t.tag.to_be_bytes());
        w.extend_from_slice(&len.to_be_bytes());
        w.extend_from_slice(&t.value);
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        let (&b, rest) = self.buf.split_first().ok_or(PduError::Truncated(field))?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], PduError> {
        if self.buf.len() < n {
            return Err(PduError::Truncated(field));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A C-Octet String. Non-ASCII octets are replaced rather than
    /// refused: these fields are ids and addresses we only compare or log.
    fn cstr(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        let nul = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(PduError::Truncated(field))?;
        if nul + 1 > max {
            return Err(PduError::TooLong {
                field,
                len: nul,
                max: max - 1,
            });
        }
        let s = String::from_utf8_lossy(&self.buf[..nul]).into_owned();
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    fn cstr_or_empty(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        if self.buf.is_empty() {
            Ok(String::new())
        } else {
            self.cstr(field, max)
        }
    }

    fn addr(&mut self, field: &'static str) -> Result<Address, PduError> {
        Ok(Address {
            ton: self.u8(field)?,
            npi: self.u8(field)?,
            addr: self.cstr(field, max::ADDR)?,
        })
    }

    fn sm(&mut self) -> Result<Sm, PduError> {
        let mut sm = Sm {
            service_type: self.cstr("service_type", max::SERVICE_TYPE)?,
            source: self.addr("source_addr")?,
            dest: self.addr("destination_addr")?,
            esm_class: self.u8("esm_class")?,
            protocol_id: self.u8("protocol_id")?,
            priority_flag: self.u8("priority_flag")?,
            schedule_delivery_time: self.cstr("schedule_delivery_time", max::TIME)?,
            validity_period: self.cstr("validity_period", max::TIME)?,
            registered_delivery: self.u8("registered_delivery")?,
            replace_if_present_flag: self.u8("replace_if_present_flag")?,
            data_coding: self.u8("data_coding")?,
            sm_default_msg_id: self.u8("sm_default_msg_id")?,
            ..Sm::default()
        };
        let len = self.u8("sm_length")? as usize;
        sm.short_message = self.take("short_message", len)?.to_vec();
        sm.tlvs = self.tlvs()?;
        Ok(sm)
    }

    fn tlvs(&mut self) -> Result<Vec<Tlv>, PduError> {
        let mut out = Vec::new();
        while !self.buf.is_empty() {
            let head = self.take("TLV header", 4)?;
            let tag = u16::from_be_bytes([head[0], head[1]]);
            let len = u16::from_be_bytes([head[2], head[3]]) as usize;
            let value = self.take("TLV value", len)?.to_vec();
            out.push(Tlv { tag, value });
        }
        Ok(out)
    }
}

/// The name of an SMPP 3.4 command_status (section 5.1.3), for logs and
/// outcome details.
pub fn status_name(status: u32) -> &'static str {
    match status {
        0x00 => "ESME_ROK",
        0x01 => "ESME_RINVMSGLEN",
        0x02 => "ESME_RINVCMDLEN",
        0x03 => "ESME_RINVCMDID",
        0x04 => "ESME_RINVBNDSTS",
        0x05 => "ESME_RALYBND",
        0x06 => "ESME_RINVPRTFLG",
        0x07 => "ESME_RINVREGDLVFLG",
        0x08 => "ESME_RSYSERR",
        0x0A => "ESME_RINVSRCADR",
        0x0B => "ESME_RINVDSTADR",
        0x0C => "ESME_RINVMSGID",
        0x0D => "ESME_RBINDFAIL",
        0x0E => "ESME_RINVPASWD",
        0x0F => "ESME_RINVSYSID",
        0x11 => "ESME_RCANCELFAIL",
        0x13 => "ESME_RREPLACEFAIL",
        0x14 => "ESME_RMSGQFUL",
        0x15 => "ESME_RINVSERTYP",
        0x33 => "ESME_RINVNUMDESTS",
        0x34 => "ESME_RINVDLNAME",
        0x40 => "ESME_RINVDESTFLAG",
        0x42 => "ESME_RINVSUBREP",
        0x43 => "ESME_RINVESMCLASS",
        0x44 => "ESME_RCNTSUBDL",
        0x45 => "ESME_RSUBMITFAIL",
        0x48 => "ESME_RINVSRCTON",
        0x49 => "ESME_RINVSRCNPI",
        0x50 => "ESME_RINVDSTTON",
        0x51 => "ESME_RINVDSTNPI",
        0x53 => "ESME_RINVSYSTYP",
        0x54 => "ESME_RINVREPFLAG",
        0x55 => "ESME_RINVNUMMSGS",
        0x58 => "ESME_RTHROTTLED",
        0x61 => "ESME_RINVSCHED",
        0x62 => "ESME_RINVEXPIRY",
        0x63 => "ESME_RINVDFTMSGID",
        0x64 => "ESME_RX_T_APPN",
        0x65 => "ESME_RX_P_APPN",
        0x66 => "ESME_RX_R_APPN",
        0x67 => "ESME_RQUERYFAIL",
        0xC0 => "ESME_RINVOPTPARSTREAM",
        0xC1 => "ESME_ROPTPARNOTALLWD",
        0xC2 => "ESME_RINVPARLEN",
        0xC3 => "ESME_RMISSINGOPTPARAM",
        0xC4 => "ESME_RINVOPTPARAMVAL",
        0xFE => "ESME_RDELIVERYFAILURE",
        0xFF => "ESME_RUNKNOWNERR",
        _ => "unknown command_status",
    }
}

/// Whether a submit_sm_resp status may pass if the same message is sent
/// again later: congestion, throttling, a temporary application error, and
/// the SMSC's own failures. Everything else describes the message itself
/// (addresses, coding, lengths), which a retry would not change.
pub fn status_is_transient(status: u32) -> bool {
    matches!(
        status,
        0x04 // ESME_RINVBNDSTS: our session, not the message
            | 0x08 // ESME_RSYSERR
            | 0x14 // ESME_RMSGQFUL
            | 0x45 // ESME_RSUBMITFAIL
            | 0x58 // ESME_RTHROTTLED
            | 0x64 // ESME_RX_T_APPN
            | 0xFE // ESME_RDELIVERYFAILURE
            | 0xFF // ESME_RUNKNOWNERR
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn roundtrip(pdu: &Pdu, wire: &str) {
        let bytes = hex(wire);
        assert_eq!(pdu.encode().unwrap(), bytes, "encode");
        assert_eq!(&Pdu::decode(&bytes).unwrap(), pdu, "decode");
    }

    #[test]
    fn bind_transceiver_vector() {
        let pdu = Pdu::new(
            1,
            Body::BindTransceiver(Bind {
                system_id: "simguard".into(),
                password: "secret".into(),
                system_type: "".into(),
                interface_version: INTERFACE_VERSION,
                addr_ton: 0,
                addr_npi: 0,
                address_range: "".into(),
            }),
        );
        roundtrip(
            &pdu,
            "00000025 00000009 00000000 00000001
             73696d677561726400 73656372657400 00 34 00 00 00",
        );
    }

    #[test]
    fn bind_transceiver_resp_with_and_without_body() {
        let ok = Pdu::new(
            1,
            Body::BindTransceiverResp {
                system_id: "SMSC".into(),
                tlvs: vec![Tlv {
                    tag: 0x0210,
                    value: vec![0x34],
                }],
            },
        );
        roundtrip(
            &ok,
            "0000001a 80000009 00000000 00000001 534d534300 0210 0001 34",
        );
        // An error response without body, as many SMSCs send it.
        let failed = Pdu::decode(&hex("00000010 80000009 0000000d 00000001")).unwrap();
        assert_eq!(failed.command_status, 0x0D);
        assert_eq!(
            failed.body,
            Body::BindTransceiverResp {
                system_id: String::new(),
                tlvs: vec![]
            }
        );
        assert_eq!(status_name(failed.command_status), "ESME_RBINDFAIL");
    }

    #[test]
    fn submit_sm_vector() {
        let pdu = Pdu::new(
            7,
            Body::SubmitSm(Sm {
                source: Address {
                    ton: 5,
                    npi: 0,
                    addr: "SG".into(),
                },
                dest: Address {
                    ton: 1,
                    npi: 1,
                    addr: "4912".into(),
                },
                registered_delivery: 1,
                short_message: b"Hi".to_vec(),
                ..Sm::default()
            }),
        );
        roundtrip(
            &pdu,
            "00000029 00000004 00000000 00000007
             00 05 00 534700 01 01 3439313200 00 00 00 00 00 01 00 00 00 02 4869",
        );
    }

    #[test]
    fn deliver_sm_receipt_with_tlvs() {
        let pdu = Pdu::new(
            3,
            Body::DeliverSm(Sm {
                source: Address {
                    ton: 1,
                    npi: 1,
                    addr: "4912".into(),
                },
                dest: Address {
                    ton: 5,
                    npi: 0,
                    addr: "SG".into(),
                },
                esm_class: 0x04,
                short_message: b"id:A1 stat:DELIVRD err:000".to_vec(),
                tlvs: vec![
                    Tlv {
                        tag: tag::RECEIPTED_MESSAGE_ID,
                        value: b"A1\0".to_vec(),
                    },
                    Tlv {
                        tag: tag::MESSAGE_STATE,
                        value: vec![2],
                    },
                ],
                ..Sm::default()
            }),
        );
        let wire = "0000004d 00000005 00000000 00000003
             00 01 01 343931320005 00 534700 04 00 00 00 00 00 00 00 00 1a
             69643a413120737461743a44454c49565244206572723a303030
             001e 0003 413100 0427 0001 02";
        roundtrip(&pdu, wire);
        let Body::DeliverSm(sm) = &pdu.body else {
            unreachable!()
        };
        assert_eq!(sm.tlv(tag::RECEIPTED_MESSAGE_ID), Some(&b"A1\0"[..]));
        assert_eq!(sm.tlv(tag::NETWORK_ERROR_CODE), None);
    }

    #[test]
    fn responses_and_empty_bodies() {
        roundtrip(
            &Pdu::new(
                7,
                Body::SubmitSmResp {
                    message_id: "abc".into(),
                },
            ),
            "00000014 80000004 00000000 00000007 61626300",
        );
        roundtrip(
            &Pdu::new(
                3,
                Body::DeliverSmResp {
                    message_id: String::new(),
                },
            ),
            "00000011 80000005 00000000 00000003 00",
        );
        roundtrip(
            &Pdu::new(9, Body::EnquireLink),
            "00000010 00000015 00000000 00000009",
        );
        roundtrip(
            &Pdu::new(9, Body::EnquireLinkResp),
            "00000010 80000015 00000000 00000009",
        );
        roundtrip(
            &Pdu::new(2, Body::Unbind),
            "00000010 00000006 00000000 00000002",
        );
        roundtrip(
            &Pdu::new(2, Body::UnbindResp),
            "00000010 80000006 00000000 00000002",
        );
        let nack = Pdu {
            command_status: 3,
            ..Pdu::new(5, Body::GenericNack)
        };
        roundtrip(&nack, "00000010 80000000 00000003 00000005");
        // A throttled submit_sm_resp without message_id.
        let throttled = Pdu::decode(&hex("00000010 80000004 00000058 00000008")).unwrap();
        assert_eq!(
            throttled.body,
            Body::SubmitSmResp {
                message_id: String::new()
            }
        );
        assert!(status_is_transient(throttled.command_status));
        assert!(!status_is_transient(0x0B));
    }

    #[test]
    fn unknown_command_kept_raw() {
        let pdu = Pdu::decode(&hex("00000012 00000103 00000000 00000004 abcd")).unwrap();
        assert_eq!(
            pdu.body,
            Body::Other {
                command_id: 0x103,
                body: vec![0xab, 0xcd]
            }
        );
        assert!(!pdu.is_response());
    }

    #[test]
    fn framing() {
        assert_eq!(frame_len(&hex("000000")), Ok(None));
        assert_eq!(frame_len(&hex("00000010 8000")), Ok(Some(16)));
        assert_eq!(frame_len(&hex("0000000f")), Err(PduError::BadLength(15)));
        assert_eq!(
            frame_len(&hex("7fffffff")),
            Err(PduError::BadLength(0x7fff_ffff))
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        // submit_sm whose sm_length runs past the end.
        let bad = hex(
            "00000023 00000004 00000000 00000001 00 000000 000000 000000 00 00 00000000 05 4869",
        );
        assert_eq!(Pdu::decode(&bad), Err(PduError::Truncated("short_message")));
        // A C-string without its NUL.
        let bad = hex("00000013 80000004 00000000 00000001 616263");
        assert_eq!(Pdu::decode(&bad), Err(PduError::Truncated("message_id")));
        // A TLV header cut short.
        let bad = hex("00000013 80000009 00000000 00000001 00 0210");
        assert_eq!(Pdu::decode(&bad), Err(PduError::Truncated("TLV header")));
        // Length field disagreeing with the buffer.
        let bad = hex("00000020 00000015 00000000 00000001");
        assert_eq!(
            Pdu::decode(&bad),
            Err(PduError::Truncated("command_length"))
        );
        // Header still readable for the generic_nack.
        let h = Header::parse(&hex("00000014 80000009 00000000 0000002a 00 0210")).unwrap();
        assert_eq!(h.sequence_number, 42);
    }

    #[test]
    fn encode_refuses_oversized_fields() {
        let pdu = Pdu::new(
            1,
            Body::BindTransceiver(Bind {
                system_id: "x".repeat(16),
                ..Bind::default()
            }),
        );
        assert_eq!(
            pdu.encode(),
            Err(PduError::TooLong {
                field: "system_id",
                len: 16,
                max: 15
            })
        );
        let pdu = Pdu::new(
            1,
            Body::SubmitSm(Sm {
                short_message: vec![0; 255],
                ..Sm::default()
            }),
        );
        assert!(matches!(
            pdu.encode(),
            Err(PduError::TooLong {
                field: "short_message",
                ..
            })
        ));
        let pdu = Pdu::new(
            1,
            Body::SubmitSmResp {
                message_id: "a\0b".into(),
            },
        );
        assert_eq!(pdu.encode(), Err(PduError::InteriorNul("message_id")));
    }
}
