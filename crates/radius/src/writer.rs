//! Packet encoding into a caller-owned buffer.

use std::net::Ipv4Addr;

use crate::attr;
use crate::crypto::{md5_of, HmacMd5};
use crate::packet::Code;
use crate::{MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN, MIN_PACKET_LEN};

/// Why an attribute could not be added.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The value does not fit the one-octet attribute length. For vendor
    /// sub-attributes `typ` is 26 (Vendor-Specific) and `len` counts the whole
    /// Vendor-Specific value (vendor id and sub-attribute header included).
    #[error("attribute {typ} value is {len} octets, at most 253 fit")]
    ValueTooLong {
        /// Attribute type.
        typ: u8,
        /// Value length that was refused.
        len: usize,
    },
    /// The packet would exceed RFC 2865's 4096-octet maximum.
    #[error("packet would be {len} octets, RADIUS allows at most 4096")]
    PacketTooLong {
        /// Length the packet would have had.
        len: usize,
    },
}

/// Encoder writing into a caller-owned buffer so senders can reuse one Vec per socket.
///
/// Every method checks limits before writing, so after an error the buffer
/// still holds a well-formed packet with the attributes added so far.
#[derive(Debug)]
pub struct PacketWriter<'b> {
    buf: &'b mut Vec<u8>,
    message_authenticator_at: Option<usize>,
}

impl<'b> PacketWriter<'b> {
    /// Starts a packet in `buf` (clearing it). The authenticator is kept only by
    /// [`finish_access_request`](Self::finish_access_request); the other finishers
    /// compute it.
    pub fn new(buf: &'b mut Vec<u8>, code: Code, identifier: u8, authenticator: [u8; 16]) -> Self {
        buf.clear();
        buf.extend_from_slice(&[code as u8, identifier, 0, MIN_PACKET_LEN as u8]);
        buf.extend_from_slice(&authenticator);
        PacketWriter {
            buf,
            message_authenticator_at: None,
        }
    }

    /// Appends an attribute; the value may be at most 253 octets.
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if value.len() > MAX_ATTR_VALUE_LEN {
            return Err(EncodeError::ValueTooLong {
                typ,
                len: value.len(),
            });
        }
        self.reserve(2 + value.len())?;
        self.buf.extend_from_slice(&[typ, (2 + value.len()) as u8]);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a 32-bit big-endian integer attribute (RFC 2865 §5 "integer").
    pub fn attr_u32(&mut self, typ: u8, v: u32) -> Result<&mut Self, EncodeError> {
        self.attr(typ, &v.to_be_bytes())
    }

    /// Appends an IPv4 address attribute (RFC 2865 §5 "address").
    pub fn attr_ipv4(&mut self, typ: u8, v: Ipv4Addr) -> Result<&mut Self, EncodeError> {
        self.attr(typ, &v.octets())
    }

    /// Appends a text attribute (UTF-8, no terminating NUL).
    pub fn attr_str(&mut self, typ: u8, v: &str) -> Result<&mut Self, EncodeError> {
        self.attr(typ, v.as_bytes())
    }

    /// Appends a Vendor-Specific attribute holding one sub-attribute in the RFC
    /// 2865 §5.26 layout; the value may be at most 247 octets.
    pub fn vsa(&mut self, vendor: u32, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        let outer_value_len = 6 + value.len();
        if outer_value_len > MAX_ATTR_VALUE_LEN {
            return Err(EncodeError::ValueTooLong {
                typ: attr::VENDOR_SPECIFIC,
                len: outer_value_len,
            });
        }
        self.reserve(2 + outer_value_len)?;
        self.buf
            .extend_from_slice(&[attr::VENDOR_SPECIFIC, (2 + outer_value_len) as u8]);
        self.buf.extend_from_slice(&vendor.to_be_bytes());
        self.buf.extend_from_slice(&[typ, (2 + value.len()) as u8]);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a Message-Authenticator placeholder (16 zero octets) that the
    /// finisher fills in. Calling it again does nothing: a packet may carry only
    /// one (RFC 3579 §3.2).
    pub fn message_authenticator(&mut self) -> Result<&mut Self, EncodeError> {
        if self.message_authenticator_at.is_none() {
            let at = self.buf.len();
            self.attr(attr::MESSAGE_AUTHENTICATOR, &[0; 16])?;
            self.message_authenticator_at = Some(at + 2);
        }
        Ok(self)
    }

    /// Accounting-Request / CoA-Request / Disconnect-Request: computes the
    /// Message-Authenticator (if added) over a zeroed authenticator field, then the
    /// Request Authenticator (RFC 2866 §3, RFC 5176 §2.3 and §3.2).
    pub fn finish_request(self, secret: &[u8]) -> &'b [u8] {
        self.finish(&[0; 16], secret, true)
    }

    /// Access-Request: keeps the given (random) authenticator, fills the
    /// Message-Authenticator (RFC 3579 §3.2).
    pub fn finish_access_request(self, secret: &[u8]) -> &'b [u8] {
        let mut own = [0; 16];
        own.copy_from_slice(&self.buf[4..MIN_PACKET_LEN]);
        self.finish(&own, secret, false)
    }

    /// Any response: Message-Authenticator (if added) over the request
    /// authenticator, then the Response Authenticator (RFC 2865 §3).
    pub fn finish_response(self, request_authenticator: &[u8; 16], secret: &[u8]) -> &'b [u8] {
        self.finish(request_authenticator, secret, true)
    }

    fn finish(self, auth_field: &[u8; 16], secret: &[u8], hash_authenticator: bool) -> &'b [u8] {
        let buf = self.buf;
        let len = u16::try_from(buf.len()).unwrap_or(u16::MAX);
        buf[2..4].copy_from_slice(&len.to_be_bytes());
        buf[4..MIN_PACKET_LEN].copy_from_slice(auth_field);
        if let Some(at) = self.message_authenticator_at {
            let mut mac = HmacMd5::new(secret);
            mac.update(buf);
            let value = mac.finalize();
            buf[at..at + 16].copy_from_slice(&value);
        }
        if hash_authenticator {
            let authenticator = md5_of(&[buf, secret]);
            buf[4..MIN_PACKET_LEN].copy_from_slice(&authenticator);
        }
        buf
    }

    fn reserve(&self, add: usize) -> Result<(), EncodeError> {
        let len = self.buf.len() + add;
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong { len });
        }
        Ok(())
    }
}
