//! The network side: sockets, identifiers, retransmission, rate control, the run loop.
//!
//! One driver task owns the generator, the token bucket and the retransmission timers;
//! one receiver task per socket matches answers. They share, per socket, the table of
//! the 256 RADIUS Identifiers behind a mutex that is held only for bookkeeping.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use simguard_radius::{Code, Packet};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{debug, info, warn};

use crate::attack::Overlay;
use crate::device::{encode, Device, EncodeCtx, Kind};
use crate::flows::FlowExporter;
use crate::geo::home_plmn;
use crate::report::{SimReport, StatusCounts};
use crate::scenario::Scenario;
use crate::source::{Generator, Next};
use crate::truth::{spawn_writer, FlowTruth, GroundTruth, TruthLine};
use crate::{Mode, SimConfig, SimError};

const SOCKET_BUFFER_BYTES: usize = 4 << 20;
/// Requests sent back to back before the driver yields to the receivers.
const SEND_BATCH: usize = 64;
const HIST_MAX_US: u64 = 3_600_000_000;

pub(crate) fn encode_ctx(cfg: &SimConfig) -> EncodeCtx<'_> {
    EncodeCtx {
        secret: cfg.secret.as_bytes(),
        nas_ip: cfg.nas_ip,
        nas_identifier: &cfg.nas_identifier,
        apn: &cfg.apn,
        message_authenticator: cfg.message_authenticator,
        home: home_plmn(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    InFlight,
    /// Done, but its Identifier is not reused yet so that late copies of the answer
    /// (to a retransmission, or after giving up) are recognised rather than taken as
    /// a bad answer to the Identifier's next request.
    Held,
}

struct Slot {
    state: SlotState,
    gen: u32,
    packet: Vec<u8>,
    req_auth: [u8; 16],
    first_sent: Instant,
    attempts: u32,
    truth: Option<Box<GroundTruth>>,
}

struct Table {
    slots: Vec<Slot>,
    /// Free Identifiers, least recently used first, so an Identifier is reused as late as possible.
    free: VecDeque<u8>,
    held: VecDeque<(Instant, u8)>,
}

impl Table {
    fn new(now: Instant) -> Table {
        Table {
            slots: (0..256)
                .map(|_| Slot {
                    state: SlotState::Free,
                    gen: 0,
                    packet: Vec::with_capacity(512),
                    req_auth: [0; 16],
                    first_sent: now,
                    attempts: 0,
                    truth: None,
                })
                .collect(),
            free: (0..=255u8).collect(),
            held: VecDeque::new(),
        }
    }

    fn alloc(&mut self, now: Instant) -> Option<u8> {
        while let Some(&(until, id)) = self.held.front() {
            if until > now {
                break;
            }
            self.held.pop_front();
            if let Some(s) = self.slots.get_mut(usize::from(id)) {
                if s.state == SlotState::Held {
                    s.state = SlotState::Free;
                    self.free.push_back(id);
                }
            }
        }
        self.free.pop_front()
    }

    /// Ends a request: its Identifier goes back to the pool, after a hold-down if more
    /// than one copy went out (more than one answer may still come).
    fn finish(&mut self, id: u8, now: Instant, hold: Duration, force_hold: bool) {
        let Some(s) = self.slots.get_mut(usize::from(id)) else {
            return;
        };
        s.truth = None;
        if s.attempts > 1 || force_hold {
            s.state = SlotState::Held;
            self.held.push_back((now + hold, id));
        } else {
            s.state = SlotState::Free;
            self.free.push_back(id);
        }
    }
}

struct Sock {
    udp: UdpSocket,
    table: Mutex<Table>,
}

struct Shared {
    socks: Vec<Sock>,
    secret: Vec<u8>,
    hold: Duration,
    freed: Notify,
    in_flight: AtomicUsize,
    answered: AtomicU64,
    bad: AtomicU64,
    duplicates: AtomicU64,
    unmatched: AtomicU64,
    truth: Option<mpsc::UnboundedSender<TruthLine>>,
}

fn open_socket(bind: IpAddr, target: SocketAddr) -> Result<UdpSocket, SimError> {
    let bind = match (bind, target.ip()) {
        (b, t) if b.is_loopback() && !t.is_loopback() => {
            if t.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            }
        }
        (b, _) => b,
    };
    let err = |source| SimError::Socket {
        bind,
        target,
        source,
    };
    let s = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(err)?;
    // Large buffers absorb bursts at tens of thousands of requests per second; the
    // kernel may cap them (net.core.rmem_max), which is not fatal.
    if let Err(e) = s.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(error = %e, "cannot enlarge SO_RCVBUF");
    }
    if let Err(e) = s.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        debug!(error = %e, "cannot enlarge SO_SNDBUF");
    }
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&SocketAddr::new(bind, 0).into()).map_err(err)?;
    // Connected: the kernel drops datagrams from anyone but the server.
    s.connect(&target.into()).map_err(err)?;
    UdpSocket::from_std(s.into()).map_err(err)
}

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Bucket {
        let rate = f64::from(rate);
        // Ten milliseconds of tokens: more than the timer's granularity, so a sleeping
        // driver does not lose rate, and little enough to keep the output smooth.
        let burst = (rate / 100.0).max(8.0);
        Bucket {
            rate,
            burst,
            tokens: burst.min(1.0),
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn next_token(&self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }
}

/// Maps wall time onto simulated time.
struct Clock {
    t0: Instant,
    start_ms: u64,
    speed: f64,
}

impl Clock {
    fn sim_ms(&self, now: Instant) -> u64 {
        if self.speed.is_infinite() {
            return u64::MAX;
        }
        let dt = now.saturating_duration_since(self.t0).as_secs_f64() * self.speed * 1_000.0;
        self.start_ms.saturating_add(dt as u64)
    }

    /// Time to write into records: with infinite speed there is no simulated clock to
    /// follow, so load-mode records carry wall-clock progress instead.
    fn stamp_ms(&self, now: Instant) -> u64 {
        if self.speed.is_infinite() {
            let dt = now.saturating_duration_since(self.t0).as_millis();
            return self
                .start_ms
                .saturating_add(dt.min(u128::from(u64::MAX)) as u64);
        }
        self.sim_ms(now)
    }

    fn wall_at(&self, sim_ms: u64) -> Instant {
        let ahead = sim_ms.saturating_sub(self.start_ms) as f64 / 1_000.0 / self.speed;
        self.t0 + Duration::from_secs_f64(ahead.min(1e9))
    }
}

struct Timer {
    deadline: Instant,
    sock: u16,
    id: u8,
    gen: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Sending,
    Draining,
    Abandoning(Instant),
}

/// The IPFIX side of a run: flow generation, its socket, what it sent.
struct Ipfix {
    exporter: FlowExporter,
    udp: UdpSocket,
    messages: u64,
    flows: u64,
    /// Most flows per wall second (0: no limit), so that bursts of attack flows at
    /// infinite speed do not overrun the collector's socket buffer.
    rate: u32,
    t0: Instant,
    /// Encoded messages waiting for the accounting sent before them to be answered,
    /// with the generation of the last request sent when they were completed.
    held: VecDeque<(u32, Vec<u8>, usize)>,
}

impl Ipfix {
    /// Holds the messages the exporter has completed until every request sent so far
    /// (up to generation `gen`) is answered: the server journals an answered request
    /// before it answers, so the collector never sees an address before the
    /// accounting that assigns it, even at infinite speed.
    fn hold(&mut self, gen: u32) {
        for (m, n) in self.exporter.out.drain(..) {
            self.held.push_back((gen, m, n));
        }
    }

    /// Sends the held messages whose requests are all answered (through generation
    /// `through`), or all of them.
    async fn release(&mut self, through: Option<u32>) {
        let mut n = 0;
        for (g, _, _) in &self.held {
            if through.is_some_and(|w| (w.wrapping_sub(*g) as i32) < 0) {
                break;
            }
            n += 1;
        }
        if n == 0 {
            return;
        }
        let batch: Vec<(Vec<u8>, usize)> = self.held.drain(..n).map(|(_, m, r)| (m, r)).collect();
        self.send(batch).await;
    }

    /// Sends messages. No answer comes back; a failed send (no collector listening)
    /// just loses the message.
    async fn send(&mut self, mut out: Vec<(Vec<u8>, usize)>) {
        for (m, records) in out.drain(..) {
            if self.rate > 0 {
                let due =
                    self.t0 + Duration::from_secs_f64(self.flows as f64 / f64::from(self.rate));
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            loop {
                match self.udp.try_send(&m) {
                    Ok(_) => {
                        self.messages += 1;
                        self.flows += records as u64;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if let Err(e) = self.udp.writable().await {
                            debug!(error = %e, "IPFIX socket not writable");
                            break;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "IPFIX message not sent");
                        break;
                    }
                }
            }
        }
    }
}

/// The newest request generation up to which every request is answered (or given up).
fn answered_through(shared: &Shared, latest: u32) -> u32 {
    if shared.in_flight.load(Ordering::Acquire) == 0 {
        return latest;
    }
    let mut oldest: Option<u32> = None;
    for sock in &shared.socks {
        let t = sock.table.lock();
        for slot in &t.slots {
            if slot.state == SlotState::InFlight {
                oldest = Some(match oldest {
                    Some(o) if (slot.gen.wrapping_sub(o) as i32) >= 0 => o,
                    _ => slot.gen,
                });
            }
        }
    }
    oldest.map_or(latest, |o| o.wrapping_sub(1))
}

/// Hands the flows the scenario overlay emitted to the exporter (and the ground
/// truth); without IPFIX they are dropped, their bytes are in the accounting anyway.
fn drain_overlay(
    overlay: &mut Option<Box<Overlay>>,
    devices: &[Device],
    ipfix: Option<&mut Ipfix>,
    truth: Option<&mpsc::UnboundedSender<TruthLine>>,
) {
    let Some(o) = overlay.as_mut() else {
        return;
    };
    if o.out.is_empty() {
        return;
    }
    let mut x = ipfix;
    for f in o.out.drain(..) {
        if let Some(x) = x.as_mut() {
            x.exporter.push(f.export_secs, f.record);
            if let (Some(tx), Some(dev)) = (truth, devices.get(f.device as usize)) {
                let _ = tx.send(TruthLine::Flow(FlowTruth::from_overlay(dev, &f)));
            }
        }
    }
}

/// Finds a free Identifier, trying the sockets round-robin from `rr`.
fn alloc_id(shared: &Shared, rr: &mut usize, now: Instant) -> Option<(usize, u8)> {
    let n = shared.socks.len();
    for k in 0..n {
        let si = (*rr + k) % n;
        let id = shared.socks[si].table.lock().alloc(now);
        if let Some(id) = id {
            *rr = (si + 1) % n;
            return Some((si, id));
        }
    }
    None
}

/// Runs the simulator until the configured duration, the end of simulated time, or
/// `shutdown` turning true. In fleet mode no Stops are sent for sessions still open at
/// the end, as a NAS that just went away would not send them either.
pub async fn run(cfg: SimConfig, shutdown: watch::Receiver<bool>) -> Result<SimReport, SimError> {
    run_with(cfg, None, shutdown).await.map(|(r, _)| r)
}

/// [`run`], with a scenario's attacks and benign variety when given; also returns the
/// generator, whose overlay knows what was injected.
pub(crate) async fn run_with(
    cfg: SimConfig,
    scenario: Option<&Scenario>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SimReport, Generator), SimError> {
    cfg.validate()?;
    let start_unix = cfg.resolved_start_unix();
    let start_ms = start_unix.saturating_mul(1_000);
    let (rate, load_duration, mode_name) = match &cfg.mode {
        Mode::Fleet => (cfg.rate, None, "fleet"),
        Mode::Load { rate, duration } => (*rate, Some(*duration), "load"),
    };
    let wall_limit = match (cfg.duration, load_duration) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let sim_end_ms = match cfg.mode {
        Mode::Fleet => cfg
            .sim_duration
            .map(|d| start_ms.saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64)),
        Mode::Load { .. } => None,
    };

    let t_build = Instant::now();
    let mut gen = match scenario {
        Some(s) => Generator::with_scenario(&cfg, start_ms, s)?,
        None => Generator::new(&cfg, start_ms),
    };
    debug!(
        devices = cfg.devices,
        elapsed_ms = t_build.elapsed().as_millis() as u64,
        "fleet built"
    );

    let mut socks = Vec::with_capacity(cfg.sockets);
    let now = Instant::now();
    for _ in 0..cfg.sockets {
        socks.push(Sock {
            udp: open_socket(cfg.bind_ip, cfg.target)?,
            table: Mutex::new(Table::new(now)),
        });
    }
    let mut ipfix = match cfg.ipfix_target {
        Some(target) => Some(Ipfix {
            exporter: FlowExporter::new(cfg.seed, gen.devices.len(), cfg.ipfix_observation_domain),
            udp: open_socket(cfg.bind_ip, target)?,
            messages: 0,
            flows: 0,
            rate: cfg.ipfix_rate,
            t0: Instant::now(),
            held: VecDeque::new(),
        }),
        None => None,
    };
    let (truth_tx, writer) = match &cfg.record_to {
        Some(path) => {
            let (tx, h) = spawn_writer(path).map_err(|source| SimError::Record {
                path: path.clone(),
                source,
            })?;
            (Some(tx), Some(h))
        }
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        socks,
        secret: cfg.secret.as_bytes().to_vec(),
        hold: cfg.timeout,
        freed: Notify::new(),
        in_flight: AtomicUsize::new(0),
        answered: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        unmatched: AtomicU64::new(0),
        truth: truth_tx,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let receivers: Vec<_> = (0..cfg.sockets)
        .map(|i| tokio::spawn(receiver(shared.clone(), i, stop_rx.clone())))
        .collect();

    info!(
        target = %cfg.target, mode = mode_name, devices = cfg.devices, rate, speed = cfg.speed,
        sockets = cfg.sockets, "simulator started"
    );

    let ctx = encode_ctx(&cfg);
    let t0 = Instant::now();
    let clock = Clock {
        t0,
        start_ms,
        speed: cfg.speed,
    };
    let mut bucket = Bucket::new(rate, t0);
    let wall_end = wall_limit.and_then(|d| t0.checked_add(d));
    let levels = cfg.retries as usize + 1;
    let mut timers: Vec<VecDeque<Timer>> = (0..levels).map(|_| VecDeque::new()).collect();
    let mut expired: Vec<Timer> = Vec::new();
    let mut scratch: Vec<u8> = Vec::with_capacity(4096);
    let mut phase = Phase::Sending;
    let mut rr = 0usize;
    let mut gen_counter = 0u32;
    let mut by_status = StatusCounts::default();
    let (mut sent, mut retransmits, mut timeouts) = (0u64, 0u64, 0u64);
    let mut max_lag_ms = 0u64;
    let mut send_end = t0;
    let mut reached_end = false;
    let mut last_event_ms = start_ms;
    let mut shutdown_open = true;

    let outcome: Result<(), SimError> = 'run: loop {
        let now = Instant::now();
        if *shutdown.borrow() && !matches!(phase, Phase::Abandoning(_)) {
            if phase == Phase::Sending {
                send_end = now;
            }
            // Let answers already on their way arrive, but send nothing more.
            phase = Phase::Abandoning(now + cfg.timeout.min(Duration::from_millis(500)));
        }
        let abandoning = matches!(phase, Phase::Abandoning(_));

        expired.clear();
        for q in timers.iter_mut() {
            while q.front().is_some_and(|t| t.deadline <= now) {
                if let Some(t) = q.pop_front() {
                    expired.push(t);
                }
            }
        }
        for t in expired.drain(..) {
            let Some(sock) = shared.socks.get(usize::from(t.sock)) else {
                continue;
            };
            let mut table = sock.table.lock();
            let Some(slot) = table.slots.get_mut(usize::from(t.id)) else {
                continue;
            };
            if slot.state != SlotState::InFlight || slot.gen != t.gen {
                continue;
            }
            if slot.attempts <= cfg.retries && !abandoning {
                // A NAS retransmits the very same datagram, Identifier and authenticator
                // included, so that the server can recognise it as a duplicate.
                if let Err(e) = sock.udp.try_send(&slot.packet) {
                    debug!(error = %e, "retransmission not sent");
                }
                slot.attempts += 1;
                retransmits += 1;
                let level = (slot.attempts as usize - 1).min(levels - 1);
                let wait = cfg
                    .timeout
                    .saturating_mul(1u32 << (slot.attempts - 1).min(10));
                let gen = slot.gen;
                drop(table);
                timers[level].push_back(Timer {
                    deadline: now + wait,
                    sock: t.sock,
                    id: t.id,
                    gen,
                });
            } else if !abandoning {
                timeouts += 1;
                if let (Some(tx), Some(truth)) = (&shared.truth, slot.truth.take()) {
                    let _ = tx.send(TruthLine::Request(*truth));
                }
                table.finish(t.id, now, shared.hold, true);
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }

        if phase == Phase::Sending && wall_end.is_some_and(|e| now >= e) {
            phase = Phase::Draining;
            send_end = now;
        }
        let in_flight = shared.in_flight.load(Ordering::Acquire);
        match phase {
            Phase::Abandoning(deadline) if now >= deadline || in_flight == 0 => break 'run Ok(()),
            Phase::Draining if in_flight == 0 => break 'run Ok(()),
            _ => {}
        }

        if let Some(x) = ipfix.as_mut() {
            if !x.held.is_empty() {
                let through = answered_through(&shared, gen_counter);
                x.release(Some(through)).await;
            }
        }

        let mut wake: Option<Instant> = None;
        let mut wait_id = false;
        let mut batch = 0usize;
        if phase == Phase::Sending {
            let sim_now = clock.sim_ms(now);
            while batch < SEND_BATCH {
                let next = gen.peek(sim_now);
                if gen.overlay.as_ref().is_some_and(|o| !o.out.is_empty()) {
                    drain_overlay(
                        &mut gen.overlay,
                        &gen.devices,
                        ipfix.as_mut(),
                        shared.truth.as_ref(),
                    );
                    if let Some(x) = ipfix.as_mut() {
                        x.exporter.after_record(gen.next_time());
                        x.hold(gen_counter);
                    }
                }
                match next {
                    Next::Done => {
                        reached_end = true;
                        phase = Phase::Draining;
                        send_end = now;
                        if let Some(x) = ipfix.as_mut() {
                            x.exporter.flush();
                            x.hold(gen_counter);
                        }
                        break;
                    }
                    Next::At(t) => {
                        wake = Some(clock.wall_at(t));
                        break;
                    }
                    Next::Due => {}
                }
                if !bucket.take(now) {
                    wake = Some(now + bucket.next_token());
                    break;
                }
                let Some((si, id)) = alloc_id(&shared, &mut rr, now) else {
                    bucket.tokens += 1.0;
                    wait_id = true;
                    break;
                };
                let sock = &shared.socks[si];
                let Some((d, rec)) = gen.pop(clock.stamp_ms(now)) else {
                    sock.table.lock().free.push_front(id);
                    break;
                };
                if !clock.speed.is_infinite() {
                    max_lag_ms = max_lag_ms.max(sim_now.saturating_sub(rec.time_ms));
                }
                last_event_ms = last_event_ms.max(rec.time_ms);
                let dev = &gen.devices[d];
                let auth = match encode(dev, &rec, &ctx, id, &mut scratch) {
                    Ok(a) => a,
                    Err(e) => {
                        sock.table.lock().free.push_front(id);
                        break 'run Err(e.into());
                    }
                };
                match rec.kind {
                    Kind::Start => by_status.start += 1,
                    Kind::Interim => by_status.interim += 1,
                    Kind::Stop => by_status.stop += 1,
                }
                gen_counter = gen_counter.wrapping_add(1);
                // Timed from here, not from the top of the batch, so latency is not inflated.
                let sent_at = Instant::now();
                {
                    let mut table = sock.table.lock();
                    if let Some(slot) = table.slots.get_mut(usize::from(id)) {
                        slot.state = SlotState::InFlight;
                        slot.gen = gen_counter;
                        slot.packet.clear();
                        slot.packet.extend_from_slice(&scratch);
                        slot.req_auth = auth;
                        slot.first_sent = sent_at;
                        slot.attempts = 1;
                        slot.truth = shared
                            .truth
                            .as_ref()
                            .map(|_| Box::new(GroundTruth::new(dev, &rec)));
                    }
                }
                shared.in_flight.fetch_add(1, Ordering::AcqRel);
                loop {
                    match sock.udp.try_send(&scratch) {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            if let Err(e) = sock.udp.writable().await {
                                debug!(error = %e, "socket not writable");
                                break;
                            }
                        }
                        Err(e) => {
                            // An ICMP error from an earlier datagram surfaces here on a
                            // connected socket; the request just goes unanswered.
                            debug!(error = %e, "send failed");
                            break;
                        }
                    }
                }
                timers[0].push_back(Timer {
                    deadline: sent_at + cfg.timeout,
                    sock: si as u16,
                    id,
                    gen: gen_counter,
                });
                sent += 1;
                batch += 1;
                if let Some(x) = ipfix.as_mut() {
                    let flows = x.exporter.on_record(dev, &rec);
                    if let Some(tx) = &shared.truth {
                        for f in flows {
                            let _ = tx.send(TruthLine::Flow(FlowTruth::new(dev, &rec, f)));
                        }
                    }
                    drain_overlay(
                        &mut gen.overlay,
                        &gen.devices,
                        Some(&mut *x),
                        shared.truth.as_ref(),
                    );
                    x.exporter.after_record(gen.next_time());
                    x.hold(gen_counter);
                }
            }
        }
        if batch == SEND_BATCH {
            tokio::task::yield_now().await;
            continue;
        }

        let mut deadline = wake.unwrap_or(now + Duration::from_millis(250));
        for q in &timers {
            if let Some(t) = q.front() {
                deadline = deadline.min(t.deadline);
            }
        }
        match phase {
            Phase::Sending => {
                if let Some(e) = wall_end {
                    deadline = deadline.min(e);
                }
                if wait_id {
                    // Held Identifiers come free by time, not by an answer.
                    deadline = deadline.min(now + Duration::from_millis(5));
                }
            }
            Phase::Abandoning(d) => deadline = deadline.min(d),
            Phase::Draining => {}
        }
        // Held flows go out as soon as the answers they wait for are in.
        let holding = ipfix.as_ref().is_some_and(|x| !x.held.is_empty());
        let watch_freed = wait_id || phase != Phase::Sending || holding;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = shared.freed.notified(), if watch_freed => {}
            r = shutdown.changed(), if shutdown_open => {
                if r.is_err() {
                    shutdown_open = false;
                }
            }
        }
    };

    let wall = t0.elapsed();
    if phase == Phase::Sending {
        send_end = Instant::now();
    }
    // Flows of records sent before a stop by time or signal.
    if let Some(x) = ipfix.as_mut() {
        x.exporter.flush();
        x.hold(gen_counter);
        x.release(None).await;
    }
    let _ = stop_tx.send(true);
    let mut hist: Option<Histogram<u64>> = Histogram::new_with_bounds(1, HIST_MAX_US, 3).ok();
    for r in receivers {
        match r.await {
            Ok(Some(h)) => {
                if let Some(total) = hist.as_mut() {
                    if let Err(e) = total.add(&h) {
                        warn!(error = %e, "cannot merge latency histogram");
                    }
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "receiver task failed"),
        }
    }
    let mut abandoned = 0u64;
    for sock in &shared.socks {
        let mut table = sock.table.lock();
        for slot in table.slots.iter_mut() {
            if slot.state == SlotState::InFlight {
                abandoned += 1;
                slot.state = SlotState::Free;
                if let (Some(tx), Some(truth)) = (&shared.truth, slot.truth.take()) {
                    let _ = tx.send(TruthLine::Request(*truth));
                }
            }
        }
    }
    let answered = shared.answered.load(Ordering::Acquire);
    let bad = shared.bad.load(Ordering::Acquire);
    let duplicates = shared.duplicates.load(Ordering::Acquire);
    let unmatched = shared.unmatched.load(Ordering::Acquire);
    drop(shared);
    if let Some(w) = writer {
        match w.await {
            Ok(Ok(lines)) => debug!(lines, "ground truth written"),
            Ok(Err(source)) => {
                return Err(SimError::Record {
                    path: cfg.record_to.clone().unwrap_or_default(),
                    source,
                })
            }
            Err(e) => warn!(error = %e, "ground-truth writer failed"),
        }
    }
    outcome?;

    let send_secs = send_end
        .saturating_duration_since(t0)
        .as_secs_f64()
        .max(1e-3);
    let clock_end = clock.sim_ms(send_end);
    let sim_end_ms = if clock.speed.is_infinite() {
        last_event_ms
    } else if reached_end {
        // Every event before the end was sent, even if the clock had not got there.
        sim_end_ms.unwrap_or(clock_end)
    } else {
        match gen.next_time() {
            Some(t) if t < clock_end => t,
            _ => clock_end,
        }
    };
    let (p50, p99, max) = hist
        .as_ref()
        .filter(|h| !h.is_empty())
        .map_or((0, 0, 0), |h| {
            (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
        });
    let report = SimReport {
        mode: mode_name.to_string(),
        devices: cfg.devices,
        sent,
        answered,
        retransmits,
        timeouts,
        bad_responses: bad,
        duplicate_responses: duplicates,
        unmatched_responses: unmatched,
        abandoned,
        by_status,
        latency_p50_us: p50,
        latency_p99_us: p99,
        latency_max_us: max,
        sim_time_start: start_unix,
        sim_time_end: sim_end_ms / 1_000,
        max_lag_secs: max_lag_ms as f64 / 1_000.0,
        wall_seconds: wall.as_secs_f64(),
        target_rate: rate,
        achieved_rate: sent as f64 / send_secs,
        answered_rate: answered as f64 / send_secs,
        flows_exported: ipfix.as_ref().map_or(0, |x| x.flows),
        ipfix_messages: ipfix.as_ref().map_or(0, |x| x.messages),
    };
    if report.throttled() {
        warn!(
            max_lag_secs = report.max_lag_secs,
            "simulated time lagged behind the clock: the rate limit throttled the fleet"
        );
    }
    info!(
        sent,
        answered,
        retransmits,
        timeouts,
        bad_responses = bad,
        achieved_rate = report.achieved_rate as u64,
        "simulator finished"
    );
    Ok((report, gen))
}

async fn receiver(
    shared: Arc<Shared>,
    i: usize,
    mut stop: watch::Receiver<bool>,
) -> Option<Histogram<u64>> {
    let mut hist = match Histogram::<u64>::new_with_bounds(1, HIST_MAX_US, 3) {
        Ok(h) => Some(h),
        Err(e) => {
            warn!(error = %e, "no latency histogram");
            None
        }
    };
    let sock = shared.socks.get(i)?;
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = sock.udp.recv(&mut buf) => {
                match r {
                    Ok(n) => on_datagram(&shared, sock, &buf[..n], hist.as_mut()),
                    Err(e) => recv_error(e).await,
                }
                // Take whatever else is queued without another trip through the reactor.
                for _ in 0..256 {
                    match sock.udp.try_recv(&mut buf) {
                        Ok(n) => on_datagram(&shared, sock, &buf[..n], hist.as_mut()),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            recv_error(e).await;
                            break;
                        }
                    }
                }
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    hist
}

async fn recv_error(e: std::io::Error) {
    if e.kind() == ErrorKind::ConnectionRefused {
        // The server's port is closed (ICMP port unreachable); requests will time out.
        debug!("server port unreachable");
    } else {
        debug!(error = %e, "receive failed");
        // Avoid spinning on an error that repeats.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn on_datagram(shared: &Shared, sock: &Sock, bytes: &[u8], hist: Option<&mut Histogram<u64>>) {
    let now = Instant::now();
    let packet = match Packet::parse(bytes) {
        Ok(p) if p.code() == Code::AccountingResponse => p,
        _ => {
            shared.bad.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let id = packet.identifier();
    let mut table = sock.table.lock();
    let Some(slot) = table.slots.get_mut(usize::from(id)) else {
        return;
    };
    match slot.state {
        SlotState::Free => {
            shared.unmatched.fetch_add(1, Ordering::Relaxed);
        }
        SlotState::Held => {
            if packet.verify_response_authenticator(&slot.req_auth, &shared.secret) {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.bad.fetch_add(1, Ordering::Relaxed);
            }
        }
        SlotState::InFlight => {
            if !packet.verify_response_authenticator(&slot.req_auth, &shared.secret) {
                shared.bad.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let us = now.saturating_duration_since(slot.first_sent).as_micros() as u64;
            if let Some(h) = hist {
                h.saturating_record(us.max(1));
            }
            if let (Some(tx), Some(mut truth)) = (&shared.truth, slot.truth.take()) {
                truth.answered = true;
                let _ = tx.send(TruthLine::Request(*truth));
            }
            table.finish(id, now, shared.hold, false);
            drop(table);
            shared.answered.fetch_add(1, Ordering::Relaxed);
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            shared.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits_to_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1_000, t0);
        let mut granted = 0;
        // One simulated second in 100 µs steps.
        for step in 0..10_000u64 {
            let now = t0 + Duration::from_micros(step * 100);
            while b.take(now) {
                granted += 1;
            }
        }
        assert!((990..=1_011).contains(&granted), "{granted}");
        let mut unlimited = Bucket::new(0, t0);
        assert!((0..100_000).all(|_| unlimited.take(t0)));
        assert_eq!(unlimited.next_token(), Duration::ZERO);
    }

    #[test]
    fn identifiers_are_reused_least_recently_and_held_after_retransmission() {
        let t0 = Instant::now();
        let mut t = Table::new(t0);
        let a = t.alloc(t0).unwrap();
        let b = t.alloc(t0).unwrap();
        assert_eq!((a, b), (0, 1));
        t.slots[0].state = SlotState::InFlight;
        t.slots[0].attempts = 1;
        t.finish(a, t0, Duration::from_secs(1), false);
        // A freed id goes to the back of the queue.
        assert_eq!(t.free.back(), Some(&0));
        t.slots[1].state = SlotState::InFlight;
        t.slots[1].attempts = 2;
        t.finish(b, t0, Duration::from_secs(1), false);
        assert!(t.slots[1].state == SlotState::Held);
        let all: Vec<u8> = std::iter::from_fn(|| t.alloc(t0)).collect();
        assert_eq!(all.len(), 255, "the held id must not be handed out");
        assert!(!all.contains(&1));
        assert_eq!(t.alloc(t0 + Duration::from_secs(1)), Some(1));
    }

    #[test]
    fn clock_maps_both_ways() {
        let t0 = Instant::now();
        let c = Clock {
            t0,
            start_ms: 1_000_000,
            speed: 600.0,
        };
        assert_eq!(c.sim_ms(t0 + Duration::from_secs(1)), 1_000_000 + 600_000);
        let w = c.wall_at(1_000_000 + 60_000);
        assert_eq!(w.duration_since(t0).as_millis(), 100);
    }
}
