//! One device's life: sessions, counters, movement, and the records it causes.
//!
//! All randomness comes from the device's own ChaCha8 stream; the only shared state is
//! the PGW's address pool and charging-id counter, which are consumed in scheduler
//! order. Scheduler order is a function of (seed, config) alone, so the content of
//! every record is too, whatever the network does.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use simguard_radius::acct::StatusType;
use simguard_radius::tgpp::{Plmn, RatType};
use simguard_radius::{Accounting, Code, EncodeError, PacketWriter};

use crate::fleet::{behaviour_stream, rng, SimDevice};
use crate::geo::{self, Location};
use crate::pool::IpPool;
use crate::profile::{Behaviour, Mobility, Profile, CAUSE_IDLE_TIMEOUT, CAUSE_LOST_CARRIER};

/// Accounting-Status-Type of a generated record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Start,
    Interim,
    Stop,
}

impl Kind {
    pub fn status_type(self) -> StatusType {
        match self {
            Kind::Start => StatusType::Start,
            Kind::Interim => StatusType::InterimUpdate,
            Kind::Stop => StatusType::Stop,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Interim => "interim",
            Kind::Stop => "stop",
        }
    }
}

/// Shared PGW state.
pub(crate) struct Pgw {
    pub pool: IpPool,
    pub next_charging_id: u32,
}

impl Pgw {
    fn charging_id(&mut self) -> u32 {
        let c = self.next_charging_id;
        // Zero is avoided because some collectors treat it as "absent".
        self.next_charging_id = self.next_charging_id.wrapping_add(1).max(1);
        c
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub charging_id: u32,
    pub framed_ip: Option<Ipv4Addr>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub last_report_ms: u64,
    pub up: u64,
    pub down: u64,
    pub up_pkts: u32,
    pub down_pkts: u32,
    /// Where the usage of the next record is measured from.
    mark: Mark,
}

/// A session's counters at the previous record this run sent for it; for a session
/// that was already open when the simulation started, zero at its start, so that the
/// usage of its first record is everything its counters say.
#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    ms: u64,
    up: u64,
    down: u64,
    up_pkts: u32,
    down_pkts: u32,
}

/// What a session used between two of its records: the difference of the cumulative
/// counters, over `[from_ms, to_ms]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub from_ms: u64,
    pub to_ms: u64,
    pub up: u64,
    pub down: u64,
    pub up_pkts: u64,
    pub down_pkts: u64,
}

impl Session {
    /// Adds traffic whose flows were already exported on their own (attack traffic,
    /// firmware downloads): the counters grow, and so does the mark, so that the usage
    /// of the next record (which the profile's flows are split from) leaves it out.
    pub fn add_carried(&mut self, up: u64, up_pkts: u64, down: u64, down_pkts: u64) {
        let (up_pkts, down_pkts) = (
            up_pkts.min(u64::from(u32::MAX)) as u32,
            down_pkts.min(u64::from(u32::MAX)) as u32,
        );
        self.up = self.up.saturating_add(up);
        self.down = self.down.saturating_add(down);
        self.up_pkts = self.up_pkts.saturating_add(up_pkts);
        self.down_pkts = self.down_pkts.saturating_add(down_pkts);
        self.mark.up = self.mark.up.saturating_add(up);
        self.mark.down = self.mark.down.saturating_add(down);
        self.mark.up_pkts = self.mark.up_pkts.saturating_add(up_pkts);
        self.mark.down_pkts = self.mark.down_pkts.saturating_add(down_pkts);
    }

    /// The usage since the previous record; the next one is measured from `t`.
    fn take_usage(&mut self, t: u64) -> Usage {
        let m = self.mark;
        self.mark = Mark {
            ms: t,
            up: self.up,
            down: self.down,
            up_pkts: self.up_pkts,
            down_pkts: self.down_pkts,
        };
        Usage {
            from_ms: m.ms.min(t),
            to_ms: t,
            up: self.up.saturating_sub(m.up),
            down: self.down.saturating_sub(m.down),
            up_pkts: u64::from(self.up_pkts.saturating_sub(m.up_pkts)),
            down_pkts: u64::from(self.down_pkts.saturating_sub(m.down_pkts)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Interim,
    Stop(u32),
}

/// What a fired event produced; everything else is read from the device right after.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub kind: Kind,
    pub time_ms: u64,
    pub cause: Option<u32>,
    /// Interim and Stop: what the session used since its previous record.
    pub usage: Option<Usage>,
}

pub(crate) struct Device {
    pub index: u32,
    pub profile: Profile,
    pub imsi: String,
    pub imeisv: String,
    pub msisdn: String,
    pub rat: RatType,
    pub loc: Location,
    rng: ChaCha8Rng,
    in_transit: bool,
    mode_until_ms: u64,
    cross_on_attach: bool,
    /// Current session, or the one just stopped until the next Start replaces it.
    pub session: Option<Session>,
    pub session_id: String,
    next: Action,
    pub next_ms: u64,
    /// Scenario knobs, all neutral by default so that a plain run is unchanged.
    pub tweaks: Tweaks,
}

/// What a scenario changes about a device: attacks (volume factor, reporting interval)
/// and benign variety (local-time schedules, interim jitter). Neutral values draw no
/// randomness, so a device without tweaks behaves exactly as in a plain run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tweaks {
    /// Multiplies the uplink bytes of every report.
    pub up_factor: u64,
    /// Replaces the profile's report interval.
    pub interval_ms: Option<u64>,
    /// Per-report devices keep their time of day in local time, so daylight-saving
    /// changes move them by an hour in UTC.
    pub local_time: bool,
    /// Interim-Updates of always-on devices come up to this much early or late.
    pub interim_jitter_ms: u64,
    /// Border crossings (Stop, then Start in the neighbouring country) so far.
    pub crossings: u32,
    /// Reports moved by a daylight-saving change so far.
    pub dst_shifts: u32,
}

impl Default for Tweaks {
    fn default() -> Self {
        Tweaks {
            up_factor: 1,
            interval_ms: None,
            local_time: false,
            interim_jitter_ms: 0,
            crossings: 0,
            dst_shifts: 0,
        }
    }
}

fn uniform_ms<R: Rng>(rng: &mut R, (lo, hi): (u32, u32)) -> u64 {
    let (lo, hi) = (u64::from(lo) * 1_000, u64::from(hi) * 1_000);
    if hi <= lo {
        lo
    } else {
        rng.gen_range(lo..=hi)
    }
}

impl Device {
    /// A device at `start_ms`, at a random phase of its reporting cycle. Always-on
    /// profiles (and every device when `open_session` is set) are already in a session
    /// that began before the simulation did.
    pub fn new(
        d: &SimDevice,
        seed: u64,
        start_ms: u64,
        pgw: &mut Pgw,
        open_session: bool,
    ) -> Device {
        Device::build(d, seed, start_ms, pgw, open_session, false)
    }

    /// A device that is not attached and has nothing scheduled (`next_ms` is
    /// `u64::MAX`) until [`Device::force`] gives it a Start.
    pub fn dormant(d: &SimDevice, seed: u64, start_ms: u64, pgw: &mut Pgw) -> Device {
        Device::build(d, seed, start_ms, pgw, false, true)
    }

    fn build(
        d: &SimDevice,
        seed: u64,
        start_ms: u64,
        pgw: &mut Pgw,
        open_session: bool,
        dormant: bool,
    ) -> Device {
        let mut r = rng(seed, behaviour_stream(d.index));
        let b = d.profile.behaviour();
        let total: u32 = b.rats.iter().map(|(_, w)| *w).sum();
        let mut x = r.gen_range(0..total.max(1));
        let mut rat = RatType::EUTRAN;
        for (t, w) in b.rats {
            if x < *w {
                rat = *t;
                break;
            }
            x -= *w;
        }
        let loc = Location::random_static(&mut r);
        let in_transit = b.mobility == Mobility::Mobile && r.gen_bool(0.5);
        let mode_until_ms = start_ms + uniform_ms(&mut r, (3_600, 10 * 3_600));
        let mut dev = Device {
            index: d.index,
            profile: d.profile,
            imsi: d.imsi.clone(),
            imeisv: d.imeisv.clone(),
            msisdn: d.msisdn.clone(),
            rat,
            loc,
            rng: r,
            in_transit,
            mode_until_ms,
            cross_on_attach: false,
            session: None,
            session_id: String::with_capacity(24),
            next: Action::Start,
            next_ms: start_ms,
            tweaks: Tweaks::default(),
        };
        if dormant {
            // Not on the network until something schedules its first Start.
            dev.next_ms = u64::MAX;
            return dev;
        }
        if b.always_on || open_session {
            dev.open_existing(start_ms, pgw);
        } else {
            let phase = uniform_ms(&mut dev.rng, (0, b.interval_secs));
            dev.next_ms = start_ms + phase;
        }
        dev
    }

    fn b(&self) -> &'static Behaviour {
        self.profile.behaviour()
    }

    fn interval_ms(&self) -> u64 {
        self.tweaks
            .interval_ms
            .unwrap_or(u64::from(self.b().interval_secs) * 1_000)
    }

    /// True while a session is up (the next action is not a Start).
    pub fn in_session(&self) -> bool {
        self.next != Action::Start
    }

    /// The pending action.
    pub fn next_action(&self) -> Action {
        self.next
    }

    /// Replaces the pending action; the caller requeues the device.
    pub fn force(&mut self, action: Action, t: u64) {
        self.next = action;
        self.next_ms = t;
    }

    /// Keeps the current session up until at least `until` and recomputes the next
    /// report with the current interval, no earlier than `not_before`.
    pub fn hold_session(&mut self, until: u64, not_before: u64) {
        if !self.in_session() {
            return;
        }
        if let Some(s) = self.session.as_mut() {
            s.end_ms = s.end_ms.max(until);
        }
        self.schedule_in_session();
        self.next_ms = self.next_ms.max(not_before);
    }

    fn open_existing(&mut self, start_ms: u64, pgw: &mut Pgw) {
        let b = self.b();
        let life = uniform_ms(&mut self.rng, b.session_secs).max(self.interval_ms());
        let age = self.rng.gen_range(0..life).min(start_ms);
        let began = start_ms - age;
        let periods = age / self.interval_ms();
        let scale = self.rng.gen_range(0.8..1.2);
        let up = (periods as f64 * b.up.mean() * scale) as u64;
        let down = (periods as f64 * (b.down.mean() + b.bulk_mean()) * scale) as u64;
        self.begin_session(began, pgw);
        if let Some(s) = self.session.as_mut() {
            s.end_ms = began + life;
            s.last_report_ms = began + periods * u64::from(b.interval_secs) * 1_000;
            s.up = up;
            s.down = down;
            s.up_pkts = up.div_ceil(b.up_packet_bytes) as u32;
            s.down_pkts = down.div_ceil(b.down_packet_bytes) as u32;
        }
        self.schedule_in_session();
    }

    fn begin_session(&mut self, t: u64, pgw: &mut Pgw) {
        let charging_id = pgw.charging_id();
        let framed_ip = pgw.pool.allocate(t);
        self.session_id.clear();
        // Charging-ID as a PGW prints it, then the session's start in ms and the device:
        // unique within a run, and across runs that resume the same fleet (same seed,
        // later start) too, which a server that remembers sessions depends on.
        let _ = write!(
            self.session_id,
            "{charging_id:08X}-{t:011X}-{:X}",
            self.index
        );
        self.session = Some(Session {
            charging_id,
            framed_ip,
            start_ms: t,
            end_ms: t,
            last_report_ms: t,
            up: 0,
            down: 0,
            up_pkts: 0,
            down_pkts: 0,
            mark: Mark {
                ms: t,
                ..Mark::default()
            },
        });
    }

    fn schedule_in_session(&mut self) {
        let interval = self.interval_ms();
        let stop_cause = self.b().stop_cause;
        // Jitter only when asked for: a draw would shift every later number of the stream.
        let j = self.tweaks.interim_jitter_ms.min(interval / 2);
        let jitter = if j > 0 && self.b().always_on {
            self.rng.gen_range(0..=2 * j)
        } else {
            j
        };
        if let Some(s) = &self.session {
            let next_report = (s.last_report_ms + interval + jitter).saturating_sub(j);
            if self.b().always_on && next_report < s.end_ms {
                self.next = Action::Interim;
                self.next_ms = next_report;
            } else {
                self.next = Action::Stop(stop_cause);
                self.next_ms = s.end_ms;
            }
        }
    }

    /// Adds `fraction` of one report's traffic.
    fn add_traffic(&mut self, fraction: f64) {
        let b = self.b();
        let mut up = self.rng.gen_range(b.up.lo..=b.up.hi);
        let mut down = self.rng.gen_range(b.down.lo..=b.down.hi);
        if b.bulk_permille > 0 && self.rng.gen_range(0..1_000) < b.bulk_permille {
            down += b.bulk_bytes;
        }
        up = up.saturating_mul(self.tweaks.up_factor);
        if fraction < 1.0 {
            up = (up as f64 * fraction) as u64;
            down = (down as f64 * fraction) as u64;
        }
        if let Some(s) = self.session.as_mut() {
            s.up = s.up.saturating_add(up);
            s.down = s.down.saturating_add(down);
            s.up_pkts = s
                .up_pkts
                .saturating_add(up.div_ceil(b.up_packet_bytes) as u32);
            s.down_pkts = s
                .down_pkts
                .saturating_add(down.div_ceil(b.down_packet_bytes) as u32);
        }
    }

    /// Trackers alternate between standing in a warehouse and riding a truck; on the road
    /// they hop cells and now and then cross a border, which drops the session.
    fn move_along(&mut self, t: u64) -> bool {
        if self.b().mobility != Mobility::Mobile {
            return false;
        }
        if t >= self.mode_until_ms {
            self.in_transit = !self.in_transit;
            let span = if self.in_transit {
                (3_600, 10 * 3_600)
            } else {
                (2 * 3_600, 24 * 3_600)
            };
            self.mode_until_ms = t + uniform_ms(&mut self.rng, span);
        }
        if self.in_transit {
            if self.rng.gen_ratio(1, 100) {
                return true;
            }
            if self.rng.gen_ratio(3, 5) {
                self.loc.step(&mut self.rng);
            }
        } else if self.rng.gen_ratio(1, 20) {
            // Stationary devices still flip between neighbouring sectors.
            self.loc.cell = (self.loc.cell + 1) % geo::CELLS_PER_REGION;
        }
        false
    }

    /// Executes the pending action at `next_ms` and schedules the one after it.
    pub fn fire(&mut self, pgw: &mut Pgw) -> Record {
        let t = self.next_ms;
        match self.next {
            Action::Start => {
                if self.cross_on_attach {
                    self.cross_on_attach = false;
                    self.loc.cross_border(&mut self.rng);
                    self.tweaks.crossings += 1;
                }
                self.begin_session(t, pgw);
                let span = self.b().session_secs;
                let len = uniform_ms(&mut self.rng, span);
                if let Some(s) = self.session.as_mut() {
                    s.end_ms = t + len.max(1_000);
                }
                self.schedule_in_session();
                Record {
                    kind: Kind::Start,
                    time_ms: t,
                    cause: None,
                    usage: None,
                }
            }
            Action::Interim => {
                if self.move_along(t) {
                    self.cross_on_attach = true;
                    return self.stop(t, CAUSE_LOST_CARRIER, pgw);
                }
                self.add_traffic(1.0);
                let usage = self.session.as_mut().map(|s| {
                    s.last_report_ms = t;
                    s.take_usage(t)
                });
                self.schedule_in_session();
                Record {
                    kind: Kind::Interim,
                    time_ms: t,
                    cause: None,
                    usage,
                }
            }
            Action::Stop(cause) => {
                let cause = if !self.b().always_on && self.rng.gen_ratio(1, 10) {
                    CAUSE_IDLE_TIMEOUT
                } else {
                    cause
                };
                self.stop(t, cause, pgw)
            }
        }
    }

    fn stop(&mut self, t: u64, cause: u32, pgw: &mut Pgw) -> Record {
        let b = self.b();
        let interval = self.interval_ms();
        let fraction = match &self.session {
            // A per-report session carries its whole report.
            _ if !b.always_on => 1.0,
            Some(s) => (t.saturating_sub(s.last_report_ms)) as f64 / interval as f64,
            None => 0.0,
        };
        self.add_traffic(fraction.min(1.0));
        let mut started = t;
        let mut usage = None;
        if let Some(s) = self.session.as_mut() {
            s.last_report_ms = t;
            started = s.start_ms;
            usage = Some(s.take_usage(t));
            if let Some(ip) = s.framed_ip {
                pgw.pool.release(ip, t);
            }
        }
        self.next = Action::Start;
        self.next_ms = if b.always_on {
            t + uniform_ms(&mut self.rng, b.reattach_secs).max(1_000)
        } else {
            let j = interval * u64::from(b.jitter_permille) / 1_000;
            let jitter = if j == 0 {
                0
            } else {
                self.rng.gen_range(0..=2 * j)
            };
            let next = (started + interval + jitter).saturating_sub(j);
            let next = if self.tweaks.local_time {
                // Same local time of day: when the clocks go forward an hour, the
                // report comes an hour earlier in UTC (and later when they go back).
                let before = self.loc.timezone(started / 1_000).offset_minutes;
                let after = self.loc.timezone(next / 1_000).offset_minutes;
                let shift = i64::from(after) - i64::from(before);
                if shift != 0 {
                    self.tweaks.dst_shifts += 1;
                }
                next.saturating_add_signed(-shift * 60_000)
            } else {
                next
            };
            next.max(t + 1_000)
        };
        Record {
            kind: Kind::Stop,
            time_ms: t,
            cause: Some(cause),
            usage,
        }
    }

    /// Load mode: one more Interim-Update at `t`, counters growing by one report.
    pub fn load_interim(&mut self, t: u64) -> Record {
        self.add_traffic(1.0);
        let usage = self.session.as_mut().map(|s| {
            s.last_report_ms = t.max(s.start_ms);
            s.take_usage(s.last_report_ms)
        });
        Record {
            kind: Kind::Interim,
            time_ms: t,
            cause: None,
            usage,
        }
    }
}

/// Per-run constants for encoding.
pub(crate) struct EncodeCtx<'a> {
    pub secret: &'a [u8],
    pub nas_ip: Ipv4Addr,
    pub nas_identifier: &'a str,
    pub apn: &'a str,
    pub message_authenticator: bool,
    pub home: Option<Plmn>,
}

/// Encodes the Accounting-Request for `rec` into `buf`; returns its Request Authenticator.
pub(crate) fn encode(
    dev: &Device,
    rec: &Record,
    ctx: &EncodeCtx<'_>,
    identifier: u8,
    buf: &mut Vec<u8>,
) -> Result<[u8; 16], EncodeError> {
    let b = dev.profile.behaviour();
    let secs = (rec.time_ms / 1_000) as u32;
    let s = dev.session.as_ref();
    let counters = rec.kind != Kind::Start;
    let a = Accounting {
        status_type: Some(rec.kind.status_type()),
        session_id: Some(dev.session_id.as_str()),
        user_name: Some(dev.imsi.as_str()),
        nas_ip: Some(ctx.nas_ip),
        nas_identifier: Some(ctx.nas_identifier),
        framed_ip: s.and_then(|s| s.framed_ip),
        called_station_id: Some(ctx.apn),
        calling_station_id: Some(dev.msisdn.as_str()),
        input_octets: s.filter(|_| counters).map(|s| s.up),
        output_octets: s.filter(|_| counters).map(|s| s.down),
        input_packets: s.filter(|_| counters).map(|s| s.up_pkts),
        output_packets: s.filter(|_| counters).map(|s| s.down_pkts),
        session_time: s
            .filter(|_| counters)
            .map(|s| (rec.time_ms.saturating_sub(s.start_ms) / 1_000) as u32),
        terminate_cause: rec.cause,
        interim_interval: (rec.kind != Kind::Stop).then_some(b.interval_secs),
        event_timestamp: Some(secs),
        imsi: Some(dev.imsi.as_str()),
        imeisv: Some(dev.imeisv.as_str()),
        charging_id: s.map(|s| s.charging_id),
        pdp_type: Some(0),
        sgsn_address: Some(dev.loc.sgsn_address()),
        ggsn_address: Some(ctx.nas_ip),
        imsi_mcc_mnc: ctx.home,
        ggsn_mcc_mnc: ctx.home,
        sgsn_mcc_mnc: dev.loc.plmn(),
        nsapi: Some(5),
        selection_mode: Some(0),
        charging_characteristics: Some(b.charging_characteristics),
        rat_type: Some(dev.rat),
        uli: dev.loc.uli(dev.rat),
        ms_timezone: Some(dev.loc.timezone(u64::from(secs))),
        ..Accounting::default()
    };
    let mut w = PacketWriter::new(buf, Code::AccountingRequest, identifier, [0u8; 16]);
    if ctx.message_authenticator {
        w.message_authenticator()?;
    }
    a.write_attributes(&mut w)?;
    let out = w.finish_request(ctx.secret);
    let mut auth = [0u8; 16];
    if let Some(x) = out.get(4..20) {
        auth.copy_from_slice(x);
    }
    Ok(auth)
}
