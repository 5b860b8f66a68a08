//! Ground-truth log: one JSON line per request with what was sent and whether it was
//! answered and, when flows are exported, one per flow.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::device::{Device, Record};
use crate::flows::Flow;
use crate::profile::Profile;

/// One line of the ground-truth file, tagged by `kind`: `"request"` lines are
/// [`GroundTruth`], `"flow"` lines [`FlowTruth`]. A request line also parses as a
/// plain [`GroundTruth`]; flow lines appear only when IPFIX is exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TruthLine {
    Request(GroundTruth),
    Flow(FlowTruth),
}

/// One exported flow: the part of a record's usage it carries, and whose it is.
/// Written when the flow is generated (at its record's send time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowTruth {
    /// Simulated time of the Interim-Update or Stop whose usage the flow is part of.
    pub sim_time_ms: u64,
    pub device: u32,
    pub imsi: String,
    pub profile: Profile,
    pub session_id: String,
    /// "up" (device to remote: Acct-Input-Octets) or "down" (remote to device).
    pub direction: String,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// 6 TCP, 17 UDP.
    pub proto: u8,
    pub tcp_flags: u16,
    pub bytes: u64,
    pub packets: u64,
    /// First and last packet, Unix milliseconds of simulated time.
    pub start_ms: u64,
    pub end_ms: u64,
}

impl FlowTruth {
    pub(crate) fn new(dev: &Device, rec: &Record, f: &Flow) -> FlowTruth {
        let r = &f.record;
        FlowTruth {
            sim_time_ms: rec.time_ms,
            device: dev.index,
            imsi: dev.imsi.clone(),
            profile: dev.profile,
            session_id: dev.session_id.clone(),
            direction: if f.uplink { "up" } else { "down" }.to_string(),
            src: r.src,
            dst: r.dst,
            src_port: r.src_port,
            dst_port: r.dst_port,
            proto: r.proto,
            tcp_flags: r.tcp_flags,
            bytes: r.octets,
            packets: r.packets,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
        }
    }
}

impl FlowTruth {
    /// A flow the scenario overlay generated (attack traffic, firmware download); its
    /// `sim_time_ms` is when it left the exporter.
    pub(crate) fn from_overlay(dev: &Device, f: &crate::attack::OutFlow) -> FlowTruth {
        let r = &f.record;
        FlowTruth {
            sim_time_ms: f.export_secs * 1_000,
            device: dev.index,
            imsi: dev.imsi.clone(),
            profile: dev.profile,
            session_id: dev.session_id.clone(),
            direction: if f.uplink { "up" } else { "down" }.to_string(),
            src: r.src,
            dst: r.dst,
            src_port: r.src_port,
            dst_port: r.dst_port,
            proto: r.proto,
            tcp_flags: r.tcp_flags,
            bytes: r.octets,
            packets: r.packets,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
        }
    }
}

/// One request as sent, and its fate (`"kind": "request"` in the file). Lines are written when the fate is known
/// (answered, timed out, or abandoned at shutdown), so they are not in send order:
/// sort by `sim_time_ms` and `device`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Simulated time of the event, Unix milliseconds (Event-Timestamp is its seconds).
    pub sim_time_ms: u64,
    pub device: u32,
    pub imsi: String,
    pub profile: Profile,
    /// "start", "interim" or "stop".
    pub status: String,
    pub session_id: String,
    /// Cumulative octets in the session as sent (0 in a Start).
    pub input_octets: u64,
    pub output_octets: u64,
    pub framed_ip: Option<Ipv4Addr>,
    /// True if a valid Accounting-Response came back.
    pub answered: bool,
}

impl GroundTruth {
    pub(crate) fn new(dev: &Device, rec: &Record) -> GroundTruth {
        let s = dev.session.as_ref();
        let counters = rec.kind != crate::device::Kind::Start;
        GroundTruth {
            sim_time_ms: rec.time_ms,
            device: dev.index,
            imsi: dev.imsi.clone(),
            profile: dev.profile,
            status: rec.kind.name().to_string(),
            session_id: dev.session_id.clone(),
            input_octets: s.filter(|_| counters).map_or(0, |s| s.up),
            output_octets: s.filter(|_| counters).map_or(0, |s| s.down),
            framed_ip: s.and_then(|s| s.framed_ip),
            answered: false,
        }
    }
}

/// Writes lines on a blocking thread so that file I/O never stalls the network tasks.
pub(crate) fn spawn_writer(
    path: &Path,
) -> std::io::Result<(
    mpsc::UnboundedSender<TruthLine>,
    tokio::task::JoinHandle<std::io::Result<u64>>,
)> {
    let file = File::create(path)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<TruthLine>();
    let handle = tokio::task::spawn_blocking(move || {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        let mut n = 0u64;
        while let Some(line) = rx.blocking_recv() {
            serde_json::to_writer(&mut w, &line).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    });
    Ok((tx, handle))
}
