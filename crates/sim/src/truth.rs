//! Ground-truth log: one JSON line per request with what was sent and whether it was answered.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::device::{Device, Record};
use crate::profile::Profile;

/// One request as sent, and its fate. Lines are written when the fate is known
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
    mpsc::UnboundedSender<GroundTruth>,
    tokio::task::JoinHandle<std::io::Result<u64>>,
)> {
    let file = File::create(path)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<GroundTruth>();
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
