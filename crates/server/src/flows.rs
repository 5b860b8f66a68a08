//! The flow collector: IPFIX, NetFlow v9 and v5 over UDP into the journal.
//!
//! One thread per socket: receive a batch of datagrams, check the exporter
//! allow-list, decode with the pure `simguard-flow` codec (templates scoped
//! per exporter and observation domain), scale by sampling, and hand one
//! `Event::Flows` per exporter and batch to the journal. Attribution to
//! devices happens in the engine, deterministically, from the journal.
//!
//! Templates outlive restarts: the codec's template state is saved to a file
//! whenever it changes, so data arriving right after a restart decodes
//! without waiting for the exporter to resend its templates.

use crate::pipeline::Submission;
use crate::udp::RecvBatch;
use ipnet::IpNet;
use simguard_engine::event::{FlowBatch, FlowRecord};
use simguard_engine::Event;
use simguard_flow::{Collector, CollectorOptions};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reasons a flow datagram is dropped (metric labels). Decode errors use the
/// codec's own `reason()` labels.
pub const UNKNOWN_EXPORTER: &str = "unknown_exporter";

/// Per-collector counters for the API and tests (Prometheus has the same).
#[derive(Debug, Default)]
pub struct FlowStats {
    pub datagrams: AtomicU64,
    pub records: AtomicU64,
    pub templates: AtomicU64,
    pub pending_sets: AtomicU64,
    pub released_records: AtomicU64,
    pub expired_sets: AtomicU64,
    pub dropped: parking_lot::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl FlowStats {
    fn drop_one(&self, reason: &'static str) {
        *self.dropped.lock().entry(reason).or_default() += 1;
        metrics::counter!("simguard_flow_dropped_total", "reason" => reason).increment(1);
    }

    pub fn dropped(&self, reason: &str) -> u64 {
        self.dropped.lock().get(reason).copied().unwrap_or(0)
    }
}

/// The exporter allow-list, most specific prefix first.
#[derive(Debug, Clone, Default)]
pub struct Exporters {
    entries: Vec<(IpNet, String)>,
}

impl Exporters {
    pub fn new(cfg: &[crate::config::FlowExporter]) -> Exporters {
        let mut entries: Vec<(IpNet, String)> = cfg
            .iter()
            .map(|e| {
                let net = e.address.trunc();
                (
                    net,
                    e.name.clone().unwrap_or_else(|| net.addr().to_string()),
                )
            })
            .collect();
        entries.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Exporters { entries }
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|(_, name)| name.as_str())
    }
}

/// Writes the template state atomically (temp file, fsync, rename).
fn save_state(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Loads saved templates into `c`; a missing file is a first start.
pub fn load_state(c: &mut Collector, path: &Path) {
    match std::fs::read(path) {
        Ok(bytes) => match c.import_state(&bytes) {
            Ok(n) => {
                tracing::info!(templates = n, file = %path.display(), "flow templates restored")
            }
            Err(e) => {
                tracing::warn!(error = %e, file = %path.display(), "saved flow templates unusable; waiting for exporters to resend")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, file = %path.display(), "cannot read saved flow templates")
        }
    }
}

pub struct FlowCollector {
    pub name: &'static str,
    pub sock: Arc<UdpSocket>,
    pub exporters: Arc<Exporters>,
    pub tx: SyncSender<Submission>,
    pub stats: Arc<FlowStats>,
    pub shutdown: Arc<AtomicBool>,
    /// Where this collector's templates are kept across restarts.
    pub state_file: PathBuf,
    pub pending_template: Duration,
}

/// Scales a codec record by its sampling interval and converts it to the
/// engine's form.
pub fn to_engine(r: &simguard_flow::FlowRecord) -> FlowRecord {
    let s = u64::from(r.sampling.max(1));
    FlowRecord {
        start: r.start_ms,
        end: r.end_ms.max(r.start_ms),
        src: r.src,
        dst: r.dst,
        src_port: r.src_port,
        dst_port: r.dst_port,
        proto: r.proto,
        tcp_flags: r.tcp_flags,
        bytes: r.bytes.saturating_mul(s),
        packets: r.packets.saturating_mul(s),
        sampling: r.sampling.max(1),
    }
}

impl FlowCollector {
    pub fn run(self) {
        let mut codec = Collector::new(CollectorOptions {
            pending_max_age_ms: self.pending_template.as_millis() as i64,
            ..CollectorOptions::default()
        });
        load_state(&mut codec, &self.state_file);
        let mut saved_version = codec.templates_changed();
        let mut rb = RecvBatch::with_slot(crate::udp::MAX_UDP_PAYLOAD);
        let mut decoded = Vec::with_capacity(4096);
        // Flows of this receive batch, per exporter name, in arrival order.
        let mut batches: Vec<(String, Vec<FlowRecord>)> = Vec::new();
        let mut last_housekeeping = Instant::now();
        let datagrams = metrics::counter!("simguard_flow_datagrams_total", "socket" => self.name);
        let records = metrics::counter!("simguard_flow_records_total", "socket" => self.name);
        while !self.shutdown.load(Ordering::Relaxed) {
            let n = match rb.recv(&self.sock) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, socket = self.name, "flow socket receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let now = crate::acct::now_ms();
            for i in 0..n {
                let Some((data, Some(from))) = rb.get(i) else {
                    continue;
                };
                if rb.truncated(i) {
                    self.stats.drop_one("truncated");
                    continue;
                }
                let Some(exporter) = self.exporters.lookup(from.ip()) else {
                    self.stats.drop_one(UNKNOWN_EXPORTER);
                    continue;
                };
                decoded.clear();
                match codec.decode(from.ip(), data, now, &mut decoded) {
                    Ok(sum) => {
                        self.stats
                            .templates
                            .fetch_add(sum.templates as u64, Ordering::Relaxed);
                        self.stats
                            .pending_sets
                            .fetch_add(sum.pending_sets as u64, Ordering::Relaxed);
                        self.stats
                            .released_records
                            .fetch_add(sum.released_records as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.stats.drop_one(e.reason());
                        tracing::debug!(error = %e, from = %from, "flow datagram dropped");
                        continue;
                    }
                }
                if decoded.is_empty() {
                    continue;
                }
                records.increment(decoded.len() as u64);
                self.stats
                    .records
                    .fetch_add(decoded.len() as u64, Ordering::Relaxed);
                let slot = match batches.iter().position(|(name, _)| name == exporter) {
                    Some(p) => p,
                    None => {
                        batches.push((exporter.to_string(), Vec::with_capacity(decoded.len())));
                        batches.len() - 1
                    }
                };
                batches[slot].1.extend(decoded.iter().map(to_engine));
            }
            if !batches.is_empty() {
                let events: Vec<Event> = batches
                    .drain(..)
                    .map(|(exporter, flows)| {
                        Event::Flows(FlowBatch {
                            exporter,
                            received: now,
                            flows,
                        })
                    })
                    .collect();
                // Flows have no acknowledgement: backpressure is the socket buffer.
                match self.tx.try_send(Submission::Ingest(events)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(sub)) => {
                        if self.tx.send(sub).is_err() {
                            break;
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
            // Counted once the batch is decoded and handed on, so that a
            // reader who sees these datagrams also sees their records and drops.
            datagrams.increment(n as u64);
            self.stats.datagrams.fetch_add(n as u64, Ordering::Relaxed);
            if last_housekeeping.elapsed() >= Duration::from_secs(1) {
                last_housekeeping = Instant::now();
                let expired = codec.expire(now);
                if expired > 0 {
                    self.stats
                        .expired_sets
                        .fetch_add(expired as u64, Ordering::Relaxed);
                    for _ in 0..expired {
                        self.stats.drop_one("template_never_arrived");
                    }
                }
                metrics::gauge!("simguard_flow_templates", "socket" => self.name)
                    .set(codec.template_count() as f64);
            }
            // Templates change rarely (refreshes of the same layout do not
            // count), so saving at once is cheap and survives a kill -9.
            if codec.templates_changed() != saved_version {
                saved_version = codec.templates_changed();
                if let Err(e) = save_state(&self.state_file, &codec.export_state()) {
                    tracing::error!(error = %e, file = %self.state_file.display(), "cannot save flow templates");
                }
            }
        }
        if codec.templates_changed() != saved_version {
            if let Err(e) = save_state(&self.state_file, &codec.export_state()) {
                tracing::error!(error = %e, "cannot save flow templates at shutdown");
            }
        }
    }
}
