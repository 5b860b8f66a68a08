//! Flow-record decoder for IPFIX (RFC 7011/7012), NetFlow v9 (RFC 3954) and
//! NetFlow v5, built for one job: turn exporter datagrams into [`FlowRecord`]s
//! fast enough that decoding stays a small part of a 1M records/s/core budget.
//!
//! The crate is pure: no sockets, no threads, no clocks. The caller passes every
//! datagram with the exporter's address and "now", and gets records appended to a
//! `Vec` it owns and reuses, so the steady state allocates nothing per record.
//!
//! * Templates are scoped per exporter IP address, observation domain (IPFIX) or
//!   source id (v9), and protocol version ([`ExporterKey`] plus version), never per
//!   source port: exporters change source port when they restart.
//! * Every template is compiled once into a flat table of (offset, length, target)
//!   entries, so a fixed-length record is decoded with direct offset reads.
//! * Data that arrives before its template is held (bounded) and decoded when the
//!   template arrives; [`Collector::expire`] drops what waited too long.
//! * Options records carrying sampling rates (and `systemInitTimeMilliseconds`) are
//!   remembered per exporter and domain and applied to the data records that refer
//!   to them; [`FlowRecord::sampling`] carries the interval, counters stay as
//!   exported.
//! * A datagram is decoded completely before any template, sampling or pending
//!   change is committed: a malformed datagram returns an error and leaves the
//!   collector exactly as it was.
//!
//! ```
//! use simguard_flow::{Collector, CollectorOptions, FlowRecord};
//!
//! let mut c = Collector::new(CollectorOptions::default());
//! let mut out: Vec<FlowRecord> = Vec::new();
//! // A NetFlow v5 datagram with one record: 10.45.0.7:40001 -> 93.184.216.34:443.
//! let mut d = vec![0u8; 24 + 48];
//! d[..2].copy_from_slice(&5u16.to_be_bytes());
//! d[2..4].copy_from_slice(&1u16.to_be_bytes());
//! d[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
//! d[24..28].copy_from_slice(&[10, 45, 0, 7]);
//! d[28..32].copy_from_slice(&[93, 184, 216, 34]);
//! d[40..44].copy_from_slice(&12u32.to_be_bytes()); // packets
//! d[44..48].copy_from_slice(&4321u32.to_be_bytes()); // bytes
//! d[56..58].copy_from_slice(&40001u16.to_be_bytes());
//! d[58..60].copy_from_slice(&443u16.to_be_bytes());
//! d[62] = 6;
//! let exporter = "192.0.2.1".parse().unwrap();
//! let sum = c.decode(exporter, &d, 1_700_000_000_000, &mut out).unwrap();
//! assert_eq!((sum.version, sum.records), (5, 1));
//! assert_eq!(out[0].dst_port, 443);
//! assert_eq!((out[0].packets, out[0].bytes, out[0].sampling), (12, 4321, 1));
//! ```

#![forbid(unsafe_code)]

mod collector;
mod error;
mod record;
mod state;
mod template;
mod v5;

use std::net::{IpAddr, Ipv4Addr};

pub use collector::Collector;
pub use error::FlowError;

/// One flow as exported, normalised to what simguard uses.
///
/// Counters are as exported (not multiplied by [`sampling`](Self::sampling)), so
/// the consumer decides how to renormalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// Source address (0.0.0.0 when the template carries none).
    pub src: IpAddr,
    /// Destination address (0.0.0.0 when the template carries none).
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// TCP flags (low 8 bits of `tcpControlBits`).
    pub tcp_flags: u8,
    /// IP type of service / traffic class byte.
    pub tos: u8,
    /// Octets as exported (`octetDeltaCount`, else `octetTotalCount`).
    pub bytes: u64,
    /// Packets as exported (`packetDeltaCount`, else `packetTotalCount`).
    pub packets: u64,
    /// Packet sampling interval applying to this record (1 = unsampled): from
    /// in-record fields, else the options record its sampler/selector id points
    /// at, else the exporter's id-less sampling options, else 1.
    pub sampling: u32,
    /// Flow start, absolute Unix milliseconds (the export time when unknown).
    pub start_ms: i64,
    /// Flow end, absolute Unix milliseconds (the export time when unknown).
    pub end_ms: i64,
    pub input_if: u32,
    pub output_if: u32,
    /// IPFIX `flowDirection` (61): 0 ingress, 1 egress, when present.
    pub direction: Option<u8>,
}

impl Default for FlowRecord {
    // IpAddr has no Default; 0.0.0.0 is the conventional "none".
    fn default() -> Self {
        FlowRecord {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            proto: 0,
            tcp_flags: 0,
            tos: 0,
            bytes: 0,
            packets: 0,
            sampling: 1,
            start_ms: 0,
            end_ms: 0,
            input_if: 0,
            output_if: 0,
            direction: None,
        }
    }
}

/// Scope of templates and options state: the exporter's IP address and its
/// observation domain (IPFIX) or source id (NetFlow v9). Not the source port,
/// which exporters change on restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExporterKey {
    pub exporter: IpAddr,
    pub domain: u32,
}

/// Bounds of a [`Collector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorOptions {
    /// Data sets held for a template that has not arrived yet, over all
    /// exporters (each held data set counts one). Oldest are dropped first.
    pub pending_max_packets: usize,
    /// Held data older than this is dropped by [`Collector::expire`].
    pub pending_max_age_ms: i64,
    /// Templates over all exporters; new ones beyond are refused (counted).
    pub max_templates: usize,
    /// Bytes of held data over all exporters; oldest are dropped first.
    pub pending_max_bytes: usize,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            pending_max_packets: 1024,
            pending_max_age_ms: 30_000,
            max_templates: 65_536,
            pending_max_bytes: 8 << 20,
        }
    }
}

/// What one [`Collector::decode`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Export protocol version: 5, 9 or 10.
    pub version: u16,
    /// Flow records decoded from this datagram (not counting released ones).
    pub records: usize,
    /// Template records in this datagram (definitions, refreshes, withdrawals).
    pub templates: usize,
    /// Options data records in this datagram.
    pub options_records: usize,
    /// Data sets of this datagram held for a template not known yet.
    pub pending_sets: usize,
    /// Records of earlier-held data sets decoded in this call (also in `out`).
    pub released_records: usize,
    /// Sets not decoded: reserved set ids, or held sets that failed to decode
    /// when their template arrived.
    pub skipped_sets: usize,
    /// Held data sets dropped in this call to stay within the pending bounds.
    pub pending_dropped: usize,
    /// New templates refused because `max_templates` was reached.
    pub templates_refused: usize,
}
