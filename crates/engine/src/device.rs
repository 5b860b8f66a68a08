//! Per-device state: inventory, identity, live sessions, network and usage.
//!
//! Sizes matter: a million of these must fit in about 1 KiB each, so text is
//! interned (`Sym`) or packed (`Digits`) and the session lists are bounded.
//! What flows add lives behind one pointer (`traffic`), allocated only for
//! devices that have flows (see `traffic` for its size).

use crate::event::{AcctRecord, AcctStatus};
use crate::ids::{fnv1a, Cell, Digits, Plmn, TimeZone};
use crate::inventory::Lifecycle;
use crate::time::{hour_start, month_index};
use crate::traffic::TrafficProfile;
use crate::Output;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Index into the engine's string interner (APNs, NAS names, group ids...).
pub type Sym = u32;

/// Most open sessions a device keeps; a device with more PDN connections than
/// this has its oldest session closed, which bounds memory per device.
pub const MAX_OPEN_SESSIONS: usize = 4;
/// Closed sessions remembered so that late or repeated records of them do not
/// count twice.
pub const CLOSED_MEMORY: usize = 4;

/// The inventory part of a device, present only when it was provisioned.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Provisioning {
    pub iccid: Option<Box<str>>,
    pub msisdn: Option<Digits>,
    pub bound_imei: Option<Digits>,
    pub tenant: Sym,
    pub group: Sym,
    pub lifecycle: Lifecycle,
    pub label: Option<Box<str>>,
}

/// An open accounting session (a PDP context / PDN connection).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Acct-Session-Id as the NAS sent it, needed later for CoA/Disconnect.
    pub id: Box<str>,
    /// Hash of (NAS, session id) for cheap comparisons.
    pub key: u64,
    pub nas: Sym,
    pub apn: Option<Sym>,
    pub framed_ip: Option<Ipv4Addr>,
    pub charging_id: Option<u32>,
    /// Event time of the first record seen for this session.
    pub start: i64,
    /// Event time of the newest record seen for this session.
    pub last: i64,
    /// Acct-Interim-Interval in seconds (0 = unknown).
    pub interim_interval: u32,
    /// Highest cumulative counters seen: usage is the growth of these.
    pub up: u64,
    pub down: u64,
    pub up_packets: u64,
    pub down_packets: u64,
}

/// What is remembered of a closed session: enough to ignore its late
/// records. Only octets: usage counts octets, and late packet counts of a
/// closed session change nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ClosedSession {
    /// 0 = empty slot.
    pub key: u64,
    pub up: u64,
    pub down: u64,
}

/// Usage in the current billing period (calendar month, UTC) and in total.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Month index (months since 1970-01) of the period the `period_*` fields count.
    pub period: i32,
    pub period_up: u64,
    pub period_down: u64,
    pub period_sessions: u32,
    pub total_up: u64,
    pub total_down: u64,
}

/// Why a device is offline.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum OfflineReason {
    /// No record yet.
    NeverSeen,
    /// The session ended with an Accounting Stop.
    SessionStopped,
    /// No interim update before the deadline derived from Acct-Interim-Interval.
    InterimTimeout,
    /// The NAS sent Accounting-On/Off: its sessions are gone.
    NasReset,
}

impl OfflineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::NeverSeen => "never_seen",
            OfflineReason::SessionStopped => "session_stopped",
            OfflineReason::InterimTimeout => "interim_timeout",
            OfflineReason::NasReset => "nas_reset",
        }
    }
}

/// Everything simguard knows about one SIM.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Device {
    pub imsi: Digits,
    /// None for an IMSI that is not in the inventory (itself a finding).
    pub provisioning: Option<Provisioning>,
    /// Newest IMEISV reported by the network.
    pub imeisv: Option<Digits>,
    /// MSISDN reported by the network (Calling-Station-Id).
    pub msisdn_seen: Option<Digits>,
    pub sessions: Vec<Session>,
    pub closed: [ClosedSession; CLOSED_MEMORY],
    /// Next slot of `closed` to overwrite.
    pub closed_next: u8,
    pub network: Option<Plmn>,
    pub rat: Option<u8>,
    pub cell: Option<Cell>,
    pub time_zone: Option<TimeZone>,
    /// Event time of the record that set network/RAT/cell, so that an older
    /// record arriving late does not move the device back.
    pub location_time: i64,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Event time after which the device counts as offline unless a record
    /// arrives (0 = no open session).
    pub deadline: i64,
    pub offline_reason: OfflineReason,
    pub usage: Usage,
    /// What flows say about the device: created by its first attributed
    /// flow, so a device without flows pays only this pointer. Bounded: see
    /// [`TrafficProfile`] (at most `TrafficProfile::MAX_HEAP_BYTES`).
    pub traffic: Option<Box<TrafficProfile>>,
    /// What detection has learned of the device: created by its first
    /// record (see [`crate::detect::DeviceDetect`] for its size).
    pub detect: Option<Box<crate::detect::DeviceDetect>>,
}

impl Device {
    pub fn new(imsi: Digits) -> Device {
        Device {
            imsi,
            provisioning: None,
            imeisv: None,
            msisdn_seen: None,
            sessions: Vec::new(),
            closed: [ClosedSession::default(); CLOSED_MEMORY],
            closed_next: 0,
            network: None,
            rat: None,
            cell: None,
            time_zone: None,
            location_time: i64::MIN,
            first_seen: None,
            last_seen: None,
            deadline: 0,
            offline_reason: OfflineReason::NeverSeen,
            usage: Usage::default(),
            traffic: None,
            detect: None,
        }
    }

    /// Online means: an open session whose deadline has not passed at `now`.
    pub fn is_online(&self, now: i64) -> bool {
        !self.sessions.is_empty() && self.deadline > now
    }

    pub fn lifecycle(&self) -> Option<Lifecycle> {
        self.provisioning.as_ref().map(|p| p.lifecycle)
    }

    /// The 8-digit Type Allocation Code of the reported IMEISV.
    pub fn tac(&self) -> Option<Digits> {
        self.imeisv.and_then(|d| d.prefix(8))
    }

    fn remember_closed(&mut self, c: ClosedSession) {
        let i = usize::from(self.closed_next) % CLOSED_MEMORY;
        self.closed[i] = c;
        self.closed_next = ((i + 1) % CLOSED_MEMORY) as u8;
    }

    fn closed_mut(&mut self, key: u64) -> Option<&mut ClosedSession> {
        self.closed.iter_mut().find(|c| c.key == key && key != 0)
    }

    /// Cache hint for the flow path: the fields a flow reads.
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch(std::ptr::addr_of!(self.traffic));
        crate::prefetch::prefetch(std::ptr::addr_of!(self.detect));
        crate::prefetch::prefetch_all(std::ptr::addr_of!(self.provisioning));
    }

    /// Whether the session with this key is remembered as closed.
    pub fn is_closed_session(&self, key: u64) -> bool {
        key != 0 && self.closed.iter().any(|c| c.key == key)
    }
}

/// Options that shape state; they are part of the snapshot so that a replay
/// uses the values the original run used.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LivenessOptions {
    /// Interim interval assumed when the NAS sends none, seconds.
    pub default_interim_secs: u32,
    /// Interim updates that may be missed before a session counts as lost.
    pub missed_interims: u32,
    /// Extra time on top, for network and NAS jitter, ms.
    pub grace_ms: i64,
}

impl Default for LivenessOptions {
    fn default() -> Self {
        LivenessOptions {
            default_interim_secs: 3600,
            missed_interims: 2,
            grace_ms: 30_000,
        }
    }
}

impl LivenessOptions {
    fn deadline(&self, last: i64, interim_secs: u32) -> i64 {
        let interval = if interim_secs == 0 {
            self.default_interim_secs
        } else {
            interim_secs
        };
        last + i64::from(interval) * 1000 * i64::from(self.missed_interims.max(1)) + self.grace_ms
    }
}

/// Growth of a cumulative counter, never negative: a counter that went
/// backwards is an older record arriving late.
fn growth(new: u64, seen: &mut u64) -> u64 {
    let d = new.saturating_sub(*seen);
    *seen = (*seen).max(new);
    d
}

/// Interned values the device logic needs for one record.
pub struct RecordSyms {
    pub nas: Sym,
    pub apn: Option<Sym>,
}

pub fn session_key(nas: &str, session_id: &str) -> u64 {
    // 0 marks an empty slot, so avoid it.
    fnv1a(&[nas.as_bytes(), session_id.as_bytes()]).max(1)
}

/// What applying an accounting record did that the engine must follow up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AcctOutcome {
    /// The device needs a deadline timer at `deadline`.
    pub needs_timer: bool,
    /// A session closed to make room (`MAX_OPEN_SESSIONS`): its framed
    /// address, start and last activity, so that the address table can end
    /// its tenure.
    pub evicted: Option<(Option<Ipv4Addr>, i64, i64)>,
}

impl Device {
    /// Applies one accounting record.
    pub fn apply_accounting(
        &mut self,
        r: &AcctRecord,
        syms: RecordSyms,
        opts: &LivenessOptions,
        out: &mut Vec<Output>,
    ) -> AcctOutcome {
        let mut evicted = None;
        let was_online = self.is_online(r.time);
        self.first_seen = Some(self.first_seen.map_or(r.time, |t| t.min(r.time)));
        self.last_seen = Some(self.last_seen.map_or(r.time, |t| t.max(r.time)));
        if r.time >= self.location_time {
            let was = (self.network, self.cell);
            self.location_time = r.time;
            if r.imeisv.is_some() {
                self.imeisv = r.imeisv;
            }
            if r.msisdn.is_some() {
                self.msisdn_seen = r.msisdn;
            }
            if r.network.is_some() {
                self.network = r.network;
            }
            if r.rat.is_some() {
                self.rat = r.rat;
            }
            if r.cell.is_some() {
                self.cell = r.cell;
            }
            if r.time_zone.is_some() {
                self.time_zone = r.time_zone;
            }
            // The location trail: one point per change of place, not per record.
            if (self.network, self.cell) != was {
                out.push(Output::Located {
                    imsi: self.imsi,
                    time: r.time,
                    network: self.network,
                    cell: self.cell,
                });
            }
        }

        let key = session_key(&r.nas, &r.session_id);
        let (du, dd);
        let mut needs_timer = false;

        if let Some(c) = self.closed_mut(key) {
            // A late or repeated record of a session that already stopped:
            // count only counter growth beyond what was counted, never reopen.
            du = growth(r.up_octets, &mut c.up);
            dd = growth(r.down_octets, &mut c.down);
        } else if let Some(pos) = self.sessions.iter().position(|s| s.key == key) {
            let s = &mut self.sessions[pos];
            du = growth(r.up_octets, &mut s.up);
            dd = growth(r.down_octets, &mut s.down);
            growth(r.up_packets, &mut s.up_packets);
            growth(r.down_packets, &mut s.down_packets);
            s.start = s.start.min(r.time);
            if r.time >= s.last {
                s.last = r.time;
                if let Some(ip) = r.framed_ip {
                    s.framed_ip = Some(ip);
                }
                if let Some(i) = r.interim_interval {
                    s.interim_interval = i;
                }
                if r.charging_id.is_some() {
                    s.charging_id = r.charging_id;
                }
            }
            if r.status == AcctStatus::Stop {
                let s = self.sessions.remove(pos);
                self.remember_closed(ClosedSession {
                    key,
                    up: s.up,
                    down: s.down,
                });
            }
        } else {
            // First record of this session. Its counters are all usage so far
            // (a missed Start does not lose the bytes before the Interim).
            du = r.up_octets;
            dd = r.down_octets;
            self.usage_roll(r.time);
            self.usage.period_sessions = self.usage.period_sessions.saturating_add(1);
            if r.status == AcctStatus::Stop {
                self.remember_closed(ClosedSession {
                    key,
                    up: r.up_octets,
                    down: r.down_octets,
                });
            } else {
                if self.sessions.len() >= MAX_OPEN_SESSIONS {
                    // Evict the session with the oldest activity.
                    if let Some((i, _)) =
                        self.sessions.iter().enumerate().min_by_key(|(_, s)| s.last)
                    {
                        let s = self.sessions.remove(i);
                        evicted = Some((s.framed_ip, s.start, s.last));
                        self.remember_closed(ClosedSession {
                            key: s.key,
                            up: s.up,
                            down: s.down,
                        });
                    }
                }
                // Most devices have one session: a first push would reserve room
                // for four (about 300 bytes per device wasted at a million devices).
                if self.sessions.capacity() == 0 {
                    self.sessions.reserve_exact(1);
                }
                self.sessions.push(Session {
                    id: r.session_id.as_str().into(),
                    key,
                    nas: syms.nas,
                    apn: syms.apn,
                    framed_ip: r.framed_ip,
                    charging_id: r.charging_id,
                    start: r.time,
                    last: r.time,
                    interim_interval: r.interim_interval.unwrap_or(0),
                    up: r.up_octets,
                    down: r.down_octets,
                    up_packets: r.up_packets,
                    down_packets: r.down_packets,
                });
            }
        }

        self.add_usage(r.time, du, dd, out);

        // Liveness: the deadline follows the newest activity of any open session.
        let newest = self
            .sessions
            .iter()
            .map(|s| opts.deadline(s.last, s.interim_interval))
            .max();
        match newest {
            Some(d) => {
                if d > self.deadline {
                    needs_timer = true;
                }
                self.deadline = d;
                if !was_online {
                    out.push(Output::CameOnline {
                        imsi: self.imsi,
                        time: r.time,
                    });
                }
            }
            None => {
                self.deadline = 0;
                if was_online {
                    self.offline_reason = OfflineReason::SessionStopped;
                    out.push(Output::WentOffline {
                        imsi: self.imsi,
                        time: r.time,
                        reason: OfflineReason::SessionStopped,
                    });
                } else if self.offline_reason == OfflineReason::NeverSeen {
                    self.offline_reason = OfflineReason::SessionStopped;
                }
            }
        }
        AcctOutcome {
            needs_timer,
            evicted,
        }
    }

    fn usage_roll(&mut self, time: i64) {
        let m = month_index(time);
        if m > self.usage.period {
            self.usage.period = m;
            self.usage.period_up = 0;
            self.usage.period_down = 0;
            self.usage.period_sessions = 0;
        }
    }

    fn add_usage(&mut self, time: i64, up: u64, down: u64, out: &mut Vec<Output>) {
        if up == 0 && down == 0 {
            return;
        }
        self.usage_roll(time);
        // A late record from an earlier month still counts in the totals and
        // its hour, but not in the current period.
        if month_index(time) == self.usage.period {
            self.usage.period_up += up;
            self.usage.period_down += down;
        }
        self.usage.total_up += up;
        self.usage.total_down += down;
        out.push(Output::Usage {
            imsi: self.imsi,
            hour: hour_start(time),
            up,
            down,
        });
    }

    /// Called when a deadline timer fires at `now`. Returns true if the device went offline.
    pub fn expire(&mut self, now: i64, out: &mut Vec<Output>) -> bool {
        if self.sessions.is_empty() || self.deadline == 0 || self.deadline > now {
            return false;
        }
        self.offline_reason = OfflineReason::InterimTimeout;
        out.push(Output::WentOffline {
            imsi: self.imsi,
            time: self.deadline,
            reason: OfflineReason::InterimTimeout,
        });
        // Keep the sessions: the IP may still be the device's, and a late
        // interim brings it back online without a Start.
        true
    }

    /// Closes every session of one NAS (Accounting-On/Off).
    pub fn close_nas_sessions(&mut self, nas: Sym, time: i64, out: &mut Vec<Output>) {
        if !self.sessions.iter().any(|s| s.nas == nas) {
            return;
        }
        let was_online = !self.sessions.is_empty();
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions[i].nas == nas {
                let s = self.sessions.remove(i);
                self.remember_closed(ClosedSession {
                    key: s.key,
                    up: s.up,
                    down: s.down,
                });
            } else {
                i += 1;
            }
        }
        if self.sessions.is_empty() {
            self.deadline = 0;
            self.offline_reason = OfflineReason::NasReset;
            if was_online {
                out.push(Output::WentOffline {
                    imsi: self.imsi,
                    time,
                    reason: OfflineReason::NasReset,
                });
            }
        }
    }
}
