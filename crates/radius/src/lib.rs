//! RADIUS codec for accounting ingestion (RFC 2865, RFC 2866, RFC 2869, RFC 3579,
//! RFC 5176) with the 3GPP TS 29.061 §16.4.7 vendor-specific attributes that packet
//! gateways (GGSN/P-GW/SMF) put into Accounting-Requests.
//!
//! The crate is a pure codec: it never does I/O, never reads a clock and never
//! generates random numbers. Callers pass request authenticators and secrets in.
//!
//! * [`Packet::parse`] validates a datagram once and then hands out zero-copy views
//!   ([`Attributes`], [`VendorAttributes`]) that cannot fail.
//! * [`Accounting::from_packet`] turns an Accounting-Request into typed fields,
//!   still borrowing from the datagram.
//! * [`PacketWriter`] encodes into a caller-owned `Vec` so senders can reuse one
//!   buffer per socket.
//!
//! ```
//! use simguard_radius::{Accounting, Code, MessageAuthenticator, Packet, PacketWriter};
//!
//! fn handle(datagram: &[u8], secret: &[u8], reply: &mut Vec<u8>) -> Option<usize> {
//!     let p = Packet::parse(datagram).ok()?;
//!     if p.code() != Code::AccountingRequest
//!         || !p.verify_request_authenticator(secret)
//!         || p.message_authenticator(secret, None) == MessageAuthenticator::Invalid
//!     {
//!         return None;
//!     }
//!     let acct = Accounting::from_packet(&p).ok()?;
//!     let _ = (acct.imsi, acct.uli, acct.input_octets);
//!     let w = PacketWriter::new(reply, Code::AccountingResponse, p.identifier(), [0; 16]);
//!     Some(w.finish_response(p.authenticator(), secret).len())
//! }
//!
//! // A request as a NAS would send it.
//! let mut req = Vec::new();
//! let mut w = PacketWriter::new(&mut req, Code::AccountingRequest, 7, [0; 16]);
//! w.attr_u32(simguard_radius::attr::ACCT_STATUS_TYPE, 1).unwrap();
//! w.message_authenticator().unwrap();
//! w.finish_request(b"secret");
//! let mut reply = Vec::new();
//! assert_eq!(handle(&req, b"secret", &mut reply), Some(20));
//! assert_eq!(handle(&req, b"other", &mut reply), None);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accounting;
pub mod acct;
pub mod attr;
pub mod coa;
mod crypto;
mod packet;
pub mod tgpp;
mod writer;

pub use accounting::{Accounting, AttrError};
pub use packet::{
    Attribute, Attributes, Code, DecodeError, MessageAuthenticator, Packet, VendorAttribute,
    VendorAttributes,
};
pub use writer::{EncodeError, PacketWriter};

/// Smallest valid RADIUS packet: the 20-octet header with no attributes.
pub const MIN_PACKET_LEN: usize = 20;
/// Largest packet RFC 2865 §3 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// Largest attribute value: the one-octet length field covers type and length too.
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Largest value of a vendor sub-attribute in the RFC 2865 §5.26 layout (the
/// Vendor-Specific value also carries the 4-octet vendor id and 2 octets of
/// sub-attribute header).
pub const MAX_VSA_VALUE_LEN: usize = MAX_ATTR_VALUE_LEN - 6;
