//! Journal events: everything that changes engine state, and their binary form.
//!
//! The journal stores these bytes; the engine is a pure function of them. The
//! first byte is a format version so that later releases can still read old
//! journals.

use crate::ids::{Cell, Digits, Plmn, TimeZone};
use crate::inventory::{DeviceRecord, Group, Lifecycle, Tenant};
use crate::policy::FirewallPolicy;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// Current event encoding version.
const FORMAT_V1: u8 = 1;

/// RFC 2866 Acct-Status-Type values the engine distinguishes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AcctStatus {
    Start,
    Interim,
    Stop,
}

impl AcctStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AcctStatus::Start => "start",
            AcctStatus::Interim => "interim",
            AcctStatus::Stop => "stop",
        }
    }
}

/// One accounting record as the engine needs it, already validated by the
/// RADIUS adapter. Counters are cumulative for the session, gigawords folded in.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AcctRecord {
    /// Event time, Unix ms: Event-Timestamp minus Acct-Delay-Time when the
    /// NAS sent it, else the time the server received the packet.
    pub time: i64,
    /// When the server received it (Unix ms), kept for latency and audit.
    pub received: i64,
    /// The configured name of the RADIUS client (NAS) that sent it.
    pub nas: String,
    pub status: AcctStatus,
    pub session_id: String,
    pub imsi: Digits,
    pub imeisv: Option<Digits>,
    /// Calling-Station-Id, when it is an MSISDN.
    pub msisdn: Option<Digits>,
    /// Called-Station-Id: the APN.
    pub apn: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    /// Octets from the device (Acct-Input-Octets + gigawords).
    pub up_octets: u64,
    /// Octets to the device (Acct-Output-Octets + gigawords).
    pub down_octets: u64,
    pub up_packets: u64,
    pub down_packets: u64,
    pub session_time: Option<u32>,
    pub terminate_cause: Option<u32>,
    pub interim_interval: Option<u32>,
    pub charging_id: Option<u32>,
    /// 3GPP-SGSN-MCC-MNC: the serving (visited or home) network.
    pub network: Option<Plmn>,
    /// 3GPP-RAT-Type.
    pub rat: Option<u8>,
    pub cell: Option<Cell>,
    pub time_zone: Option<TimeZone>,
}

/// Accounting-On / Accounting-Off: the NAS (re)started or is going down, so
/// every session it held is gone.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct NasReset {
    pub time: i64,
    pub nas: String,
    /// true for Accounting-On, false for Accounting-Off.
    pub on: bool,
}

/// One flow record (IPFIX / NetFlow), decoded and validated by the flow
/// adapter. Addresses are as the exporter saw them; which side is the device
/// is decided by the engine (see `iptable`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct FlowRecord {
    /// First packet, Unix ms (0 when the exporter did not send it).
    pub start: i64,
    /// Last packet, Unix ms.
    pub end: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP...).
    pub proto: u8,
    /// Cumulative OR of the TCP flags of the flow's packets (0 for non-TCP).
    pub tcp_flags: u8,
    /// Octets, already scaled by `sampling`.
    pub bytes: u64,
    /// Packets, already scaled by `sampling`.
    pub packets: u64,
    /// Packet sampling interval: 1 = unsampled, N = one packet in N.
    pub sampling: u32,
}

impl FlowRecord {
    /// The time the flow is attributed at: its start, or its end when the
    /// exporter sent no start.
    pub fn time(&self) -> i64 {
        if self.start > 0 {
            self.start
        } else {
            self.end
        }
    }
}

/// The flow records of one export packet (or several, batched by the adapter).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FlowBatch {
    /// The exporter as named in the allow-list (or its address).
    pub exporter: String,
    /// When the server received the export, Unix ms.
    pub received: i64,
    pub flows: Vec<FlowRecord>,
}

impl FlowBatch {
    /// Event time of the batch: the newest flow end, or the receive time of
    /// an empty batch.
    pub fn time(&self) -> i64 {
        self.flows
            .iter()
            .map(|f| f.end)
            .max()
            .unwrap_or(self.received)
    }
}

/// Everything the journal records.
///
/// New variants go at the end: the encoding is the variant's index, so
/// journals written before a variant existed keep decoding.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Event {
    Accounting(AcctRecord),
    NasReset(NasReset),
    /// Wall-clock tick written by the server so that deadlines fire when no
    /// traffic arrives. Time only moves forward: an older tick changes nothing.
    Tick {
        time: i64,
    },
    UpsertTenant(Tenant),
    UpsertGroup(Group),
    UpsertDevices(Vec<DeviceRecord>),
    /// A person or a rule changed a device's lifecycle state.
    SetLifecycle {
        time: i64,
        imsi: Digits,
        state: Lifecycle,
        actor: String,
        reason: String,
    },
    /// Flow records from an IPFIX/NetFlow exporter.
    Flows(FlowBatch),
    /// Sets (replaces) the firewall policy of a device group.
    SetPolicy {
        group: String,
        policy: FirewallPolicy,
    },
    /// Creates or replaces a response rule.
    UpsertRule(crate::rules::Rule),
    DeleteRule {
        id: String,
    },
    /// A person acts on a device (block, throttle, release...) with a reason.
    DeviceAction {
        time: i64,
        imsi: Digits,
        action: crate::rules::ActionKind,
        actor: String,
        reason: String,
        expire_secs: Option<u32>,
    },
    /// What the network answered to an enforced action (for the audit trail).
    /// Its time is the server's, so it does not move the engine clock.
    ActionResult(crate::rules::ActionResult),
}

#[derive(Debug, thiserror::Error)]
pub enum EventCodecError {
    #[error("event encoding version {0} is not supported by this build")]
    Version(u8),
    #[error("empty event record")]
    Empty,
    #[error("event record is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
}

impl Event {
    /// Appends the encoded event to `buf` (which may already hold other data).
    pub fn encode_into(&self, buf: &mut Vec<u8>) -> Result<(), EventCodecError> {
        buf.push(FORMAT_V1);
        let taken = std::mem::take(buf);
        *buf = postcard::to_extend(self, taken)?;
        Ok(())
    }

    pub fn decode(bytes: &[u8]) -> Result<Event, EventCodecError> {
        match bytes.split_first() {
            None => Err(EventCodecError::Empty),
            Some((&FORMAT_V1, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((&v, _)) => Err(EventCodecError::Version(v)),
        }
    }

    /// Event time, if the event has one.
    pub fn time(&self) -> Option<i64> {
        match self {
            Event::Accounting(r) => Some(r.time),
            Event::NasReset(r) => Some(r.time),
            Event::Tick { time } | Event::SetLifecycle { time, .. } => Some(*time),
            Event::Flows(b) => Some(b.time()),
            // People act in wall-clock time; like SetLifecycle, it counts.
            Event::DeviceAction { time, .. } => Some(*time),
            Event::UpsertTenant(_)
            | Event::UpsertGroup(_)
            | Event::UpsertDevices(_)
            | Event::SetPolicy { .. }
            | Event::UpsertRule(_)
            | Event::DeleteRule { .. }
            | Event::ActionResult(_) => None,
        }
    }
}
