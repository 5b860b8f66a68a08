//! The flow collector: IPFIX, NetFlow v9 and v5 over UDP into the journal.
//!
//! One thread per socket: receive a batch of datagrams, check the exporter
//! allow-list, decode with the pure `simguard-flow` codec (templates scoped
//! per exporter and observation domain), scale by sampling, and gather the
//! records of many receive batches into one `Event::Flows` per exporter,
//! handed to the journal every `commit_records` records or `commit_interval`,
//! whichever comes first. Flows are never acknowledged, so they need no
//! per-datagram durability: gathering them turns thousands of small journal
//! commits (each an fdatasync and a few thread wake-ups) into a hundred or
//! so a second. Attribution to devices happens in the engine,
//! deterministically, from the journal.
//!
//! Templates outlive restarts: the codec's template state is saved to a file
//! whenever it changes, so data arriving right after a restart decodes
//! without waiting for the exporter to resend its templates.

use crate::pipeline::{Permit, RecordBudget, Submission};
use crate::udp::RecvBatch;
use ipnet::IpNet;
use simguard_engine::event::{FlowBatch, FlowRecord};
use simguard_engine::Event;
use simguard_flow::{Collector, CollectorOptions};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a receive that found only a few datagrams waiting, the collector
/// sleeps this long before the next, so that the socket buffer gathers
/// datagrams: at moderate rates one wake-up then takes tens of datagrams
/// instead of one (a wake-up costs more than decoding a datagram). The
/// buffer (`socket_receive_buffer`) holds far more than a millisecond at any
/// rate one core can apply, and flows wait `commit_interval_ms` anyway.
const RECEIVE_LINGER: Duration = Duration::from_millis(1);

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
    /// Hand the gathered records to the journal once there are this many...
    pub commit_records: usize,
    /// ...or once the oldest of them has waited this long.
    pub commit_interval: Duration,
    /// Room for records between the collectors and the engine, shared by
    /// every collector (see [`RecordBudget`]).
    pub budget: Arc<RecordBudget>,
}

/// Flow records received and not yet handed to the journal, per exporter
/// name, in arrival order.
struct Gathered {
    batches: Vec<(String, Vec<FlowRecord>)>,
    records: usize,
    /// Receive time of the oldest record gathered (Unix ms, and monotonic).
    first_ms: i64,
    since: Instant,
}

impl Gathered {
    fn push(&mut self, exporter: &str, now_ms: i64, flows: &[simguard_flow::FlowRecord]) {
        if self.records == 0 {
            self.first_ms = now_ms;
            self.since = Instant::now();
        }
        let slot = match self.batches.iter().position(|(name, _)| name == exporter) {
            Some(p) => p,
            None => {
                // Starts at a typical event's size; grows by doubling to commit_records.
                let cap = flows.len().max(1024);
                self.batches
                    .push((exporter.to_string(), Vec::with_capacity(cap)));
                self.batches.len() - 1
            }
        };
        self.batches[slot].1.extend(flows.iter().map(to_engine));
        self.records += flows.len();
    }

    /// Takes everything gathered as one event per exporter.
    fn take(&mut self) -> Vec<Event> {
        self.records = 0;
        let received = self.first_ms;
        self.batches
            .drain(..)
            .map(|(exporter, flows)| {
                Event::Flows(FlowBatch {
                    exporter,
                    received,
                    flows,
                })
            })
            .collect()
    }
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

/// Appends `batch`, as `Event::Flows(batch)`, in exactly the bytes
/// `Event::encode_into` writes (format version, then postcard), without
/// going through serde. The journal thread encodes every flow record, and
/// serde's generic path (an enum and a byte array per address, a bounds
/// check per byte) costs several times the record's own work there. The
/// test `the_flow_encoder_writes_exactly_what_postcard_writes` compares the
/// two, so a change to the event's form cannot go unnoticed.
pub fn encode_flow_event(batch: &FlowBatch, buf: &mut Vec<u8>) {
    /// `Event::Flows`' variant index, and the event format version.
    const FLOWS_VARIANT: u8 = 7;
    const FORMAT_V1: u8 = 1;
    buf.reserve(32 + batch.exporter.len() + batch.flows.len() * 40);
    buf.push(FORMAT_V1);
    buf.push(FLOWS_VARIANT);
    let mut head = Encoded::default();
    head.varint(batch.exporter.len() as u64);
    buf.extend_from_slice(head.bytes());
    buf.extend_from_slice(batch.exporter.as_bytes());
    let mut head = Encoded::default();
    head.varint(zigzag(batch.received));
    head.varint(batch.flows.len() as u64);
    buf.extend_from_slice(head.bytes());
    for f in &batch.flows {
        // Each record is put together on the stack and copied in one go:
        // pushing byte by byte onto the Vec costs a capacity check per byte.
        let mut r = Encoded::default();
        r.varint(zigzag(f.start));
        r.varint(zigzag(f.end));
        r.addr(f.src);
        r.addr(f.dst);
        r.varint(u64::from(f.src_port));
        r.varint(u64::from(f.dst_port));
        r.byte(f.proto);
        r.byte(f.tcp_flags);
        r.varint(f.bytes);
        r.varint(f.packets);
        r.varint(u64::from(f.sampling));
        buf.extend_from_slice(r.bytes());
    }
}

/// One record's bytes. The most a record takes: two 10-byte times, two
/// 17-byte addresses, 3 + 3 for the ports, 2 single bytes, two 10-byte
/// counters and 5 for the sampling interval = 87.
struct Encoded {
    b: [u8; 96],
    n: usize,
}

impl Default for Encoded {
    fn default() -> Self {
        Encoded { b: [0; 96], n: 0 }
    }
}

impl Encoded {
    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }

    #[inline(always)]
    fn byte(&mut self, v: u8) {
        self.b[self.n] = v;
        self.n += 1;
    }

    /// postcard's unsigned integers (u16 and wider): LEB128, low bits first.
    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// serde's non-human-readable `IpAddr`: the variant index, then the octets.
    #[inline(always)]
    fn addr(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(v) => {
                self.byte(0);
                self.b[self.n..self.n + 4].copy_from_slice(&v.octets());
                self.n += 4;
            }
            IpAddr::V6(v) => {
                self.byte(1);
                self.b[self.n..self.n + 16].copy_from_slice(&v.octets());
                self.n += 16;
            }
        }
    }
}

/// postcard's signed integers: zigzag, then varint.
#[inline(always)]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

impl FlowCollector {
    /// Hands what is gathered to the journal once it holds room in the
    /// budget. While the engine is behind this waits, the socket is not
    /// read, and the kernel drops what does not fit its buffer. Returns
    /// false when the server is shutting down.
    fn submit(&self, gathered: &mut Gathered) -> bool {
        let n = gathered.records;
        let mut shutting_down: Option<Instant> = None;
        let permit: Permit = loop {
            if let Some(p) = self.budget.acquire(n, Duration::from_millis(100)) {
                break p;
            }
            // At shutdown the engine keeps draining until the collectors are
            // gone; if it stopped instead, give up rather than hang.
            if self.shutdown.load(Ordering::Relaxed)
                && shutting_down.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(5)
            {
                return false;
            }
        };
        let events = gathered.take();
        match self.tx.send(Submission::Ingest { events, permit }) {
            Ok(()) => true,
            Err(_) => false,
        }
    }

    pub fn run(self) {
        let mut codec = Collector::new(CollectorOptions {
            pending_max_age_ms: self.pending_template.as_millis() as i64,
            ..CollectorOptions::default()
        });
        load_state(&mut codec, &self.state_file);
        let mut saved_version = codec.templates_changed();
        let mut rb = RecvBatch::with_slot(crate::udp::MAX_UDP_PAYLOAD);
        let mut decoded = Vec::with_capacity(4096);
        let mut gathered = Gathered {
            batches: Vec::new(),
            records: 0,
            first_ms: 0,
            since: Instant::now(),
        };
        let commit_records = self.commit_records.max(1);
        // The socket's read timeout is how late a quiet socket's last records
        // can be handed on: no later than the commit interval.
        let timeout = self
            .sock
            .read_timeout()
            .ok()
            .flatten()
            .map_or(self.commit_interval, |t| t.min(self.commit_interval))
            .max(Duration::from_millis(1));
        if let Err(e) = self.sock.set_read_timeout(Some(timeout)) {
            tracing::warn!(error = %e, socket = self.name, "cannot shorten the flow socket's read timeout");
        }
        let mut last_housekeeping = Instant::now();
        let datagrams = metrics::counter!("simguard_flow_datagrams_total", "socket" => self.name);
        let records = metrics::counter!("simguard_flow_records_total", "socket" => self.name);
        let queued = metrics::gauge!("simguard_flow_queued_records");
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
                        if sum.templates > 0 {
                            self.stats
                                .templates
                                .fetch_add(sum.templates as u64, Ordering::Relaxed);
                        }
                        if sum.pending_sets > 0 {
                            self.stats
                                .pending_sets
                                .fetch_add(sum.pending_sets as u64, Ordering::Relaxed);
                        }
                        if sum.released_records > 0 {
                            self.stats
                                .released_records
                                .fetch_add(sum.released_records as u64, Ordering::Relaxed);
                        }
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
                gathered.push(exporter, now, &decoded);
            }
            // Flows have no acknowledgement: backpressure is the socket buffer.
            if gathered.records > 0
                && (gathered.records >= commit_records
                    || gathered.since.elapsed() >= self.commit_interval
                    || self.shutdown.load(Ordering::Relaxed))
            {
                if !self.submit(&mut gathered) {
                    break;
                }
                queued.set(self.budget.queued() as f64);
            }
            // Counted once the batch is decoded, so that a reader who sees
            // these datagrams also sees their records and drops.
            datagrams.increment(n as u64);
            self.stats.datagrams.fetch_add(n as u64, Ordering::Relaxed);
            if n > 0 && n < crate::udp::BATCH / 4 {
                std::thread::sleep(RECEIVE_LINGER.min(self.commit_interval));
            }
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
        // What was decoded before shutdown is still journaled.
        if gathered.records > 0 && !self.submit(&mut gathered) {
            tracing::warn!(
                records = gathered.records,
                socket = self.name,
                "flow records decoded at shutdown could not be journaled"
            );
        }
        if codec.templates_changed() != saved_version {
            if let Err(e) = save_state(&self.state_file, &codec.export_state()) {
                tracing::error!(error = %e, "cannot save flow templates at shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::mpsc::{sync_channel, Receiver};

    /// A NetFlow v5 datagram (the simplest format the codec takes) with
    /// `n` records; record `i` has source port `first_port + i`.
    fn v5(first_port: u16, n: u16) -> Vec<u8> {
        let now = crate::acct::now_ms();
        let mut d = Vec::new();
        d.extend_from_slice(&5u16.to_be_bytes());
        d.extend_from_slice(&n.to_be_bytes());
        d.extend_from_slice(&100_000u32.to_be_bytes()); // sysUptime ms
        d.extend_from_slice(&((now / 1000) as u32).to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&u32::from(first_port).to_be_bytes()); // flow sequence
        d.extend_from_slice(&[0, 0, 0, 0]); // engine type, id, sampling
        for i in 0..n {
            d.extend_from_slice(&Ipv4Addr::new(10, 45, 0, 1).octets());
            d.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 1).octets());
            d.extend_from_slice(&[0; 4]); // next hop
            d.extend_from_slice(&[0; 4]); // interfaces
            d.extend_from_slice(&1u32.to_be_bytes()); // packets
            d.extend_from_slice(&100u32.to_be_bytes()); // octets
            d.extend_from_slice(&99_000u32.to_be_bytes()); // first
            d.extend_from_slice(&99_500u32.to_be_bytes()); // last
            d.extend_from_slice(&(first_port + i).to_be_bytes());
            d.extend_from_slice(&443u16.to_be_bytes());
            d.extend_from_slice(&[0, 0, 17, 0]); // pad, flags, proto, tos
            d.extend_from_slice(&[0; 8]); // AS numbers, masks, pad
        }
        d
    }

    struct Rig {
        to: SocketAddr,
        from: UdpSocket,
        rx: Receiver<Submission>,
        stats: Arc<FlowStats>,
        budget: Arc<RecordBudget>,
        shutdown: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
        _dir: tempfile::TempDir,
    }

    impl Rig {
        /// A collector on an ephemeral port. `queued` datagrams are in its
        /// socket before it starts, so that its first receive takes them all.
        fn new(commit_records: usize, interval_ms: u64, budget: usize, queued: &[Vec<u8>]) -> Rig {
            let sock = crate::udp::bind(
                "127.0.0.1:0".parse().unwrap(),
                1 << 20,
                Duration::from_millis(100),
            )
            .unwrap();
            let to = sock.local_addr().unwrap();
            let from = UdpSocket::bind("127.0.0.1:0").unwrap();
            for d in queued {
                from.send_to(d, to).unwrap();
            }
            let (tx, rx) = sync_channel(16);
            let dir = tempfile::tempdir().unwrap();
            let stats = Arc::new(FlowStats::default());
            let budget = RecordBudget::new(budget);
            let shutdown = Arc::new(AtomicBool::new(false));
            let exporters = Exporters::new(&[crate::config::FlowExporter {
                name: Some("test".into()),
                address: "127.0.0.1/32".parse().unwrap(),
            }]);
            let c = FlowCollector {
                name: "test",
                sock: Arc::new(sock),
                exporters: Arc::new(exporters),
                tx,
                stats: stats.clone(),
                shutdown: shutdown.clone(),
                state_file: dir.path().join("templates.bin"),
                pending_template: Duration::from_secs(30),
                commit_records,
                commit_interval: Duration::from_millis(interval_ms),
                budget: budget.clone(),
            };
            let thread = Some(std::thread::spawn(move || c.run()));
            Rig {
                to,
                from,
                rx,
                stats,
                budget,
                shutdown,
                thread,
                _dir: dir,
            }
        }

        fn send(&self, d: &[u8]) {
            self.from.send_to(d, self.to).unwrap();
        }

        /// The next submission's events and permit.
        fn next(&self, within: Duration) -> Option<(Vec<Event>, Permit)> {
            match self.rx.recv_timeout(within) {
                Ok(Submission::Ingest { events, permit }) => Some((events, permit)),
                Ok(_) => panic!("a collector submits only Ingest"),
                Err(_) => None,
            }
        }

        fn stop(mut self) -> Vec<(Vec<Event>, Permit)> {
            self.shutdown.store(true, Ordering::Relaxed);
            let mut rest = Vec::new();
            while let Some(s) = self.next(Duration::from_secs(5)) {
                rest.push(s);
            }
            if let Some(t) = self.thread.take() {
                t.join().unwrap();
            }
            rest
        }
    }

    /// Source ports of the flows of one submission, per event.
    fn ports(events: &[Event]) -> Vec<(String, Vec<u16>)> {
        events
            .iter()
            .map(|e| match e {
                Event::Flows(b) => (
                    b.exporter.clone(),
                    b.flows.iter().map(|f| f.src_port).collect(),
                ),
                other => panic!("not a flow batch: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn records_of_many_datagrams_are_gathered_into_one_event_until_commit_records() {
        // Two datagrams (8 records) wait in the socket; 10 are needed.
        let rig = Rig::new(10, 60_000, 1000, &[v5(1000, 4), v5(2000, 4)]);
        assert!(
            rig.next(Duration::from_millis(300)).is_none(),
            "8 records are below commit_records and the interval is a minute"
        );
        assert_eq!(rig.stats.records.load(Ordering::Relaxed), 8);
        rig.send(&v5(3000, 4));
        let (events, permit) = rig.next(Duration::from_secs(5)).expect("a submission");
        assert_eq!(
            ports(&events),
            vec![(
                "test".to_string(),
                vec![1000, 1001, 1002, 1003, 2000, 2001, 2002, 2003, 3000, 3001, 3002, 3003]
            )],
            "one event, every record in arrival order"
        );
        assert_eq!(permit.records(), 12);
        assert_eq!(rig.budget.queued(), 12);
        drop(permit);
        assert_eq!(rig.budget.queued(), 0);
        assert!(rig.stop().is_empty());
    }

    #[test]
    fn a_quiet_socket_hands_its_records_on_after_the_interval() {
        let rig = Rig::new(1_000_000, 50, 1_000_000, &[]);
        let t = Instant::now();
        rig.send(&v5(1000, 3));
        let (events, _permit) = rig.next(Duration::from_secs(5)).expect("handed on");
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "handed on after {:?}, before the interval",
            t.elapsed()
        );
        assert_eq!(
            ports(&events),
            vec![("test".to_string(), vec![1000, 1001, 1002])]
        );
        drop(events);
        assert!(rig.stop().is_empty());
    }

    #[test]
    fn a_full_budget_stops_the_collector_until_the_engine_gives_room_back() {
        let rig = Rig::new(4, 60_000, 8, &[]);
        rig.send(&v5(1000, 4));
        let first = rig.next(Duration::from_secs(5)).expect("first");
        rig.send(&v5(2000, 4));
        let second = rig.next(Duration::from_secs(5)).expect("second");
        assert_eq!(rig.budget.queued(), 8);
        rig.send(&v5(3000, 4));
        assert!(
            rig.next(Duration::from_millis(300)).is_none(),
            "no room for a third batch while 8 of 8 records are unapplied"
        );
        // The engine applied the first batch.
        drop(first);
        let (third, _p) = rig
            .next(Duration::from_secs(5))
            .expect("third, once room was given back");
        assert_eq!(
            ports(&third),
            vec![("test".to_string(), vec![3000, 3001, 3002, 3003])]
        );
        drop(second);
        assert!(rig.stop().is_empty());
    }

    #[test]
    fn the_flow_encoder_writes_exactly_what_postcard_writes() {
        use std::net::Ipv6Addr;
        let addrs = [
            IpAddr::V4(Ipv4Addr::new(10, 45, 0, 1)),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 2, 3, 4, 5)),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ];
        let times = [0, 1, -1, 63, 64, -65, 1_700_000_000_123, i64::MAX, i64::MIN];
        let counts = [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut flows = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            for (j, &c) in counts.iter().enumerate() {
                let k = i * counts.len() + j;
                flows.push(FlowRecord {
                    start: t,
                    end: times[(i + j) % times.len()],
                    src: addrs[k % addrs.len()],
                    dst: addrs[(k / 2) % addrs.len()],
                    src_port: [0, 127, 128, 443, u16::MAX][k % 5],
                    dst_port: [u16::MAX, 16_384, 53, 0][k % 4],
                    proto: [6, 17, 1, 255][k % 4],
                    tcp_flags: (k * 7) as u8,
                    bytes: c,
                    packets: counts[(j + 3) % counts.len()],
                    sampling: [1, 127, 128, 16_384, u32::MAX][k % 5],
                });
            }
        }
        for exporter in ["", "local", &"x".repeat(200)] {
            for n in [0, 1, flows.len()] {
                let batch = FlowBatch {
                    exporter: exporter.to_string(),
                    received: times[n % times.len()],
                    flows: flows[..n].to_vec(),
                };
                let event = Event::Flows(batch.clone());
                let mut want = vec![9, 9];
                event.encode_into(&mut want).unwrap();
                let mut got = vec![9, 9];
                encode_flow_event(&batch, &mut got);
                assert_eq!(got, want, "exporter {exporter:?}, {n} flows");
                assert_eq!(Event::decode(&got[2..]).unwrap(), event);
            }
        }
    }

    #[test]
    fn records_gathered_at_shutdown_are_still_handed_on() {
        let rig = Rig::new(1_000_000, 60_000, 1_000_000, &[]);
        rig.send(&v5(1000, 2));
        let t = Instant::now();
        while rig.stats.records.load(Ordering::Relaxed) < 2 {
            assert!(t.elapsed() < Duration::from_secs(5), "not decoded");
            std::thread::sleep(Duration::from_millis(5));
        }
        let rest = rig.stop();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            ports(&rest[0].0),
            vec![("test".to_string(), vec![1000, 1001])]
        );
    }
}
