//! Packet validation and zero-copy views (RFC 2865 §3, §5) plus authenticator
//! checks (RFC 2865 §3, RFC 2866 §3, RFC 3579 §3.2, RFC 5176 §2.3 and §3.2).

use crate::attr;
use crate::crypto::{ct_eq, md5_of, HmacMd5};
use crate::{MAX_PACKET_LEN, MIN_PACKET_LEN};

/// RADIUS packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3, RFC 5997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Code {
    AccessRequest = 1,
    AccessAccept = 2,
    AccessReject = 3,
    AccountingRequest = 4,
    AccountingResponse = 5,
    AccessChallenge = 11,
    StatusServer = 12,
    StatusClient = 13,
    DisconnectRequest = 40,
    DisconnectAck = 41,
    DisconnectNak = 42,
    CoaRequest = 43,
    CoaAck = 44,
    CoaNak = 45,
}

impl Code {
    /// The code for a wire value, `None` for codes this crate does not handle.
    pub fn from_u8(v: u8) -> Option<Code> {
        Some(match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            _ => return None,
        })
    }

    /// The name FreeRADIUS and Wireshark print, e.g. `"Accounting-Request"`.
    pub fn name(self) -> &'static str {
        match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::StatusServer => "Status-Server",
            Code::StatusClient => "Status-Client",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
        }
    }

    /// True for codes whose Request Authenticator is an MD5 over the packet
    /// (RFC 2866 §3, RFC 5176 §2.3) rather than a random nonce.
    pub fn has_hashed_request_authenticator(self) -> bool {
        matches!(
            self,
            Code::AccountingRequest | Code::CoaRequest | Code::DisconnectRequest
        )
    }

    /// True for codes sent in reply to a request; their authenticator depends on
    /// the request's.
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Code::AccessAccept
                | Code::AccessReject
                | Code::AccessChallenge
                | Code::AccountingResponse
                | Code::DisconnectAck
                | Code::DisconnectNak
                | Code::CoaAck
                | Code::CoaNak
        )
    }
}

/// Why a datagram is not a well-formed RADIUS packet.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 20 octets received, or a length field below 20.
    #[error("RADIUS packet length {len} is below the 20-octet minimum")]
    TooShort {
        /// The received length or the header's length field, whichever is short.
        len: usize,
    },
    /// The length field exceeds RFC 2865's 4096-octet maximum.
    #[error("RADIUS length field {len} exceeds the 4096-octet maximum")]
    TooLong {
        /// The header's length field.
        len: usize,
    },
    /// The length field claims more octets than were received (truncated datagram).
    #[error("RADIUS length field says {header} octets but only {received} were received")]
    LengthMismatch {
        /// The header's length field.
        header: usize,
        /// Octets actually received.
        received: usize,
    },
    /// A code outside [`Code`].
    #[error("unknown RADIUS code {0}")]
    UnknownCode(u8),
    /// An attribute whose length octet is below 2 or runs past the packet's end.
    #[error("attribute {typ} at offset {offset} has length {len}, which is below 2 or runs past the end of the packet")]
    BadAttributeLength {
        /// Offset of the attribute's type octet from the start of the packet.
        offset: usize,
        /// The attribute type.
        typ: u8,
        /// The attribute's length octet.
        len: usize,
    },
}

impl DecodeError {
    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::LengthMismatch { .. } => "length_mismatch",
            DecodeError::UnknownCode(_) => "unknown_code",
            DecodeError::BadAttributeLength { .. } => "bad_attribute_length",
        }
    }
}

/// Outcome of checking a Message-Authenticator (RFC 3579 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuthenticator {
    /// The packet carries no Message-Authenticator.
    Absent,
    /// Present and matches the HMAC-MD5 under the given secret.
    Valid,
    /// Present but wrong, not 16 octets, repeated, or uncheckable (a response
    /// checked without its request's authenticator).
    Invalid,
}

/// One attribute: the type octet and the value (without type and length octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Attribute type (see [`crate::attr`]).
    pub typ: u8,
    /// Value octets.
    pub value: &'a [u8],
}

/// One vendor sub-attribute of a Vendor-Specific attribute (RFC 2865 §5.26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorAttribute<'a> {
    /// SMI network management private enterprise code, e.g. 10415 for 3GPP.
    pub vendor: u32,
    /// Vendor type octet.
    pub typ: u8,
    /// Value octets.
    pub value: &'a [u8],
}

/// A validated RADIUS packet borrowing the received bytes.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    code: Code,
    authenticator: &'a [u8; 16],
}

impl<'a> Packet<'a> {
    /// Validates: length at least 20, header length field at most `buf.len()`,
    /// at most 4096 and at least 20 (bytes beyond the header length are padding
    /// and ignored per RFC 2865 §3), known code, every attribute length at least 2
    /// and within the packet.
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let Some((header, _)) = buf.split_first_chunk::<MIN_PACKET_LEN>() else {
            return Err(DecodeError::TooShort { len: buf.len() });
        };
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len < MIN_PACKET_LEN {
            return Err(DecodeError::TooShort { len });
        }
        if len > MAX_PACKET_LEN {
            return Err(DecodeError::TooLong { len });
        }
        let Some(bytes) = buf.get(..len) else {
            return Err(DecodeError::LengthMismatch {
                header: len,
                received: buf.len(),
            });
        };
        let code = Code::from_u8(header[0]).ok_or(DecodeError::UnknownCode(header[0]))?;
        let Some(authenticator) = header.last_chunk::<16>() else {
            return Err(DecodeError::TooShort { len: buf.len() });
        };

        let mut offset = MIN_PACKET_LEN;
        while offset < len {
            let typ = bytes[offset];
            let alen = bytes.get(offset + 1).map_or(0, |&l| usize::from(l));
            if alen < 2 || offset + alen > len {
                return Err(DecodeError::BadAttributeLength {
                    offset,
                    typ,
                    len: alen,
                });
            }
            offset += alen;
        }

        Ok(Packet {
            bytes,
            code,
            authenticator,
        })
    }

    /// The packet code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The identifier octet used to match responses to requests.
    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    /// The 16-octet authenticator field as received.
    pub fn authenticator(&self) -> &'a [u8; 16] {
        self.authenticator
    }

    /// The packet exactly as long as its length field (trailing padding dropped).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// All attributes in wire order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.attr_bytes(),
        }
    }

    /// The value of the first attribute of type `typ`.
    pub fn attribute(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Sub-attributes of every Vendor-Specific attribute laid out as RFC 2865 §5.26
    /// suggests (1-octet type, 1-octet length). A Vendor-Specific attribute whose
    /// contents do not tile into such sub-attributes is skipped entirely, since
    /// some vendors use other layouts and half-decoding those yields garbage.
    pub fn vendor_attributes(&self) -> VendorAttributes<'a> {
        VendorAttributes {
            attrs: self.attributes(),
            vendor: 0,
            rest: &[],
        }
    }

    /// RFC 2866 §3 / RFC 5176 §2.3: MD5(Code+Identifier+Length+16 zero
    /// octets+Attributes+Secret) == authenticator. Meaningful for
    /// Accounting-Request, CoA-Request and Disconnect-Request; an Access-Request's
    /// authenticator is random, so this returns false for it.
    pub fn verify_request_authenticator(&self, secret: &[u8]) -> bool {
        self.verify_response_authenticator(&[0; 16], secret)
    }

    /// Responses: MD5(Code+Identifier+Length+RequestAuthenticator+Attributes+Secret).
    pub fn verify_response_authenticator(
        &self,
        request_authenticator: &[u8; 16],
        secret: &[u8],
    ) -> bool {
        let expected = md5_of(&[
            &self.bytes[..4],
            request_authenticator,
            self.attr_bytes(),
            secret,
        ]);
        ct_eq(&expected, self.authenticator)
    }

    /// Checks the Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2, RFC 5176
    /// §3.2): HMAC-MD5 keyed with the secret over the packet with the
    /// Message-Authenticator value zeroed and the authenticator field replaced by:
    ///
    /// * `request_authenticator` when given (responses: the request's authenticator);
    /// * otherwise, for Access-Request and Status-Server/-Client, the packet's own
    ///   authenticator;
    /// * otherwise, for Accounting-Request, CoA-Request and Disconnect-Request, 16
    ///   zero octets. RFC 5176 specifies this for CoA/Disconnect; RFC 2869 leaves
    ///   Accounting-Request open, and FreeRADIUS (radclient, radiusd) zeroes it too,
    ///   as checked by the radclient interop test.
    ///
    /// A response checked without `request_authenticator` is [`Invalid`] because
    /// its MAC cannot be computed. More than one Message-Authenticator, or one
    /// whose value is not 16 octets, is also [`Invalid`].
    ///
    /// [`Invalid`]: MessageAuthenticator::Invalid
    pub fn message_authenticator(
        &self,
        secret: &[u8],
        request_authenticator: Option<&[u8; 16]>,
    ) -> MessageAuthenticator {
        let mut found = None;
        for (offset, a) in OffsetAttributes::new(self.attr_bytes(), MIN_PACKET_LEN) {
            if a.typ == attr::MESSAGE_AUTHENTICATOR {
                if found.is_some() {
                    return MessageAuthenticator::Invalid;
                }
                found = Some((offset, a.value));
            }
        }
        let Some((offset, value)) = found else {
            return MessageAuthenticator::Absent;
        };
        if value.len() != 16 {
            return MessageAuthenticator::Invalid;
        }
        let auth_field: &[u8; 16] = match (request_authenticator, self.code) {
            (Some(ra), _) => ra,
            (None, Code::AccessRequest | Code::StatusServer | Code::StatusClient) => {
                self.authenticator
            }
            (None, c) if c.has_hashed_request_authenticator() => &[0; 16],
            (None, _) => return MessageAuthenticator::Invalid,
        };
        let value_start = offset + 2;
        let value_end = value_start + 16;
        let mut mac = HmacMd5::new(secret);
        mac.update(&self.bytes[..4]);
        mac.update(auth_field);
        mac.update(&self.bytes[MIN_PACKET_LEN..value_start]);
        mac.update(&[0; 16]);
        mac.update(&self.bytes[value_end..]);
        if ct_eq(&mac.finalize(), value) {
            MessageAuthenticator::Valid
        } else {
            MessageAuthenticator::Invalid
        }
    }

    fn attr_bytes(&self) -> &'a [u8] {
        self.bytes.get(MIN_PACKET_LEN..).unwrap_or(&[])
    }
}

/// Iterator over a packet's attributes, see [`Packet::attributes`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let (typ, value, rest) = split_tlv(self.rest)?;
        self.rest = rest;
        Some(Attribute { typ, value })
    }
}

/// Splits one type-length-value item off `buf`. `None` at the end or on a
/// malformed length, which stops iteration instead of panicking.
pub(crate) fn split_tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&[typ, len], rest) = buf.split_first_chunk::<2>()?;
    let vlen = usize::from(len).checked_sub(2)?;
    if vlen > rest.len() {
        return None;
    }
    let (value, rest) = rest.split_at(vlen);
    Some((typ, value, rest))
}

/// Attributes with their offset in the packet, for rewriting them in place.
struct OffsetAttributes<'a> {
    inner: Attributes<'a>,
    offset: usize,
}

impl<'a> OffsetAttributes<'a> {
    fn new(rest: &'a [u8], offset: usize) -> Self {
        OffsetAttributes {
            inner: Attributes { rest },
            offset,
        }
    }
}

impl<'a> Iterator for OffsetAttributes<'a> {
    type Item = (usize, Attribute<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let a = self.inner.next()?;
        let at = self.offset;
        self.offset += a.value.len() + 2;
        Some((at, a))
    }
}

/// Iterator over vendor sub-attributes, see [`Packet::vendor_attributes`].
#[derive(Debug, Clone)]
pub struct VendorAttributes<'a> {
    attrs: Attributes<'a>,
    vendor: u32,
    rest: &'a [u8],
}

impl<'a> Iterator for VendorAttributes<'a> {
    type Item = VendorAttribute<'a>;

    fn next(&mut self) -> Option<VendorAttribute<'a>> {
        loop {
            if let Some((typ, value, rest)) = split_tlv(self.rest) {
                self.rest = rest;
                return Some(VendorAttribute {
                    vendor: self.vendor,
                    typ,
                    value,
                });
            }
            let a = self.attrs.next()?;
            if a.typ != attr::VENDOR_SPECIFIC {
                continue;
            }
            if let Some((vendor, subs)) = split_vsa(a.value) {
                if sub_attributes_well_formed(subs) {
                    self.vendor = vendor;
                    self.rest = subs;
                }
            }
        }
    }
}

/// Splits a Vendor-Specific value into vendor id and sub-attribute bytes.
pub(crate) fn split_vsa(value: &[u8]) -> Option<(u32, &[u8])> {
    let (id, subs) = value.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*id), subs))
}

/// Whether `subs` is a non-empty sequence of 1-octet-type/1-octet-length items
/// covering it exactly.
pub(crate) fn sub_attributes_well_formed(mut subs: &[u8]) -> bool {
    if subs.is_empty() {
        return false;
    }
    while !subs.is_empty() {
        match split_tlv(subs) {
            Some((_, _, rest)) => subs = rest,
            None => return false,
        }
    }
    true
}
