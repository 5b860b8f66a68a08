//! The attack lab's overlay on a fleet run: attack instances and benign variety that
//! change what devices send, and the ground-truth labels of what was injected.
//!
//! The overlay lives inside the fleet scheduler. Its events (an attack's onset, each
//! second of a flood, its end) share the scheduler's heap with the devices' own events,
//! so everything happens in simulated-time order and is a function of the scenario.
//! Device state changes go through [`Device::force`] and friends; traffic whose flows
//! the overlay exports itself goes into the session counters with
//! [`crate::device::Session::add_carried`], so Acct-Input/Output-Octets include it while
//! the profile's own flows (split from a record's usage) do not count it twice.
//!
//! Each attack instance draws from its own ChaCha8 stream, so adding an attack to a
//! scenario changes nothing about other instances or untouched devices.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use simguard_radius::tgpp::RatType;

use crate::device::{Action, Device, Kind, Record};
use crate::fleet::{rng, SimDevice};
use crate::flows::{FIRMWARE_SERVER, PROTO_TCP, PROTO_UDP};
use crate::geo::{self, Location};
use crate::ipfix::FlowRecord;
use crate::label::Label;
use crate::profile::{Profile, CAUSE_LOST_CARRIER};
use crate::scenario::{placement, AttackKind, Scenario, DEFAULT_OVERLOAD_DEVICES};
use crate::SimError;

const PROTO_GRE: u8 = 47;
const SYN: u16 = 0x02;
const FIN: u16 = 0x01;
const PSH: u16 = 0x08;
const ACK: u16 = 0x10;

const STREAM_ATTACK_PLAN: u64 = 6 << 32;
const STREAM_BENIGN_PLAN: u64 = 7 << 32;
fn attack_stream(id: usize) -> u64 {
    (5 << 32) | id as u64
}

/// Handsets whose TACs a swapped SIM shows up with (as public TAC tables list them).
const PHONES: [(&str, &str); 2] = [
    ("01332700", "Apple iPhone 5"),
    ("35226005", "Samsung Galaxy S III"),
];

/// The public resolvers Mirai's water torture picks from.
pub(crate) const RESOLVERS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(74, 82, 42, 42),
    Ipv4Addr::new(64, 6, 64, 6),
    Ipv4Addr::new(4, 2, 2, 2),
];

/// Mirai's scanner skips these (see data/mirai-behaviour.md), including its two
/// bugs: 169.254/16 and 100.127/16 are *not* skipped.
pub fn mirai_excluded(a: Ipv4Addr) -> bool {
    let [o1, o2, _, _] = a.octets();
    matches!(
        o1,
        0 | 3
            | 6
            | 7
            | 10
            | 11
            | 15
            | 16
            | 21
            | 22
            | 26
            | 28
            | 29
            | 30
            | 33
            | 55
            | 56
            | 127
            | 214
            | 215
    ) || o1 >= 224
        || (o1 == 172 && (16..32).contains(&o2))
        || (o1 == 192 && o2 == 168)
        || (o1 == 100 && (64..127).contains(&o2))
        || (o1 == 198 && (o2 == 18 || o2 == 19))
}

/// A random address as Mirai's scanner picks them.
fn mirai_target(r: &mut ChaCha8Rng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(r.gen::<u32>());
        if !mirai_excluded(a) {
            return a;
        }
    }
}

/// The documentation ranges the fleet's own destinations live in.
fn fleet_range(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    matches!((o1, o2, o3), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
}

/// A public address no device of the fleet ever talks to.
fn foreign_target(r: &mut ChaCha8Rng) -> Ipv4Addr {
    loop {
        let a = mirai_target(r);
        let o1 = a.octets()[0];
        // Also skip link-local and CGNAT leftovers Mirai lets through.
        if !(fleet_range(a) || o1 == 169 || o1 == 100) {
            return a;
        }
    }
}

/// One flow the overlay exports, with the device and the simulated second it leaves
/// the exporter's cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutFlow {
    pub device: u32,
    pub export_secs: u64,
    pub uplink: bool,
    pub record: FlowRecord,
}

/// What the scheduler must requeue after the overlay touched something.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sched {
    /// The device's pending action changed: queue it at its `next_ms`.
    Device(u32),
    /// An overlay event at this time.
    Event(usize, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    Active,
    /// The end passed; the next record still belongs to the attack (flapping).
    Ending,
    Done,
}

/// Steps of the attacks that move a device through a Stop and a Start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    None,
    /// The forced Stop is pending; after it, the Start comes after `gap_ms`.
    AwaitStop,
    /// The Start is pending; it takes the new identity or place.
    AwaitStart,
}

struct Instance {
    id: usize,
    kind: AttackKind,
    /// The attacked device; cell-overload has `extras` instead.
    device: Option<u32>,
    extras: std::ops::Range<u32>,
    onset_ms: u64,
    until_ms: u64,
    rate: u64,
    rng: ChaCha8Rng,
    phase: Phase,
    step: Step,
    gap_ms: u64,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    flows: u64,
    packets: u64,
    bytes: u64,
    records: u64,
    /// Floods: the victim, resolver or exfiltration destination; the bot's port.
    target: Ipv4Addr,
    src_port: u16,
    probes: u64,
    port_23: u64,
    port_2323: u64,
    /// Roaming and travel: where from, and where to.
    origin: Option<Location>,
    dest_country: u8,
    abroad: bool,
    returning: bool,
    cell: Option<Location>,
    last_fired_ms: Option<u64>,
    detail: Map<String, Value>,
}

impl Instance {
    fn touch(&mut self, from: u64, to: u64) {
        self.first_ms = Some(self.first_ms.map_or(from, |f| f.min(from)));
        self.last_ms = Some(self.last_ms.map_or(to, |l| l.max(to)));
    }
}

/// Counts of the benign variety a run produced, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BenignCounts {
    /// Firmware downloads carried by reports.
    pub firmware_downloads: u64,
    /// Reports of per-report devices moved by a daylight-saving change.
    pub dst_shifts: u64,
    /// Tracker border crossings between allowed countries.
    pub border_crossings: u64,
}

pub(crate) struct Overlay {
    instances: Vec<Instance>,
    /// Per device: the instance it belongs to, or `NONE`.
    dev_instance: Vec<u32>,
    /// Per device: pending firmware downloads (due time, bytes), earliest first.
    firmware: Vec<Vec<(u64, u64)>>,
    pub out: Vec<OutFlow>,
    base_devices: u32,
    firmware_downloads: u64,
    scratch_ports: Vec<u16>,
}

const NONE: u32 = u32::MAX;

impl Overlay {
    /// Picks the attacked devices and firmware participants for the scenario; `sims`
    /// is [`Scenario::devices`].
    pub fn new(s: &Scenario, sims: &[SimDevice]) -> Result<Overlay, SimError> {
        let start = s.start_ms();
        let end_ms = s.end_ms();
        let base = s.fleet.devices;
        let mut prng = rng(s.seed, STREAM_ATTACK_PLAN);
        let mut pools: BTreeMap<Profile, Vec<u32>> = BTreeMap::new();
        for d in sims.iter().take(base as usize) {
            if d.provisioned {
                pools.entry(d.profile).or_default().push(d.index);
            }
        }
        for p in Profile::ALL {
            if let Some(v) = pools.get_mut(&p) {
                v.shuffle(&mut prng);
            }
        }
        let mut dev_instance = vec![NONE; sims.len()];
        let mut instances = Vec::new();
        let mut next_extra = base;
        for (si, spec) in s.attacks.iter().enumerate() {
            for k in 0..spec.count {
                let id = instances.len();
                let onset_ms = start
                    .saturating_add(spec.at.as_ms())
                    .saturating_add(spec.every.as_ms().saturating_mul(u64::from(k)));
                // A silent device never comes back within the run.
                let until_ms = if spec.kind == AttackKind::Silent {
                    end_ms
                } else {
                    onset_ms.saturating_add(spec.duration.as_ms()).min(end_ms)
                };
                let (device, extras) = if spec.kind == AttackKind::CellOverload {
                    let n = spec.devices.unwrap_or(DEFAULT_OVERLOAD_DEVICES);
                    let r = next_extra..next_extra + n;
                    next_extra += n;
                    for i in r.clone() {
                        if let Some(x) = dev_instance.get_mut(i as usize) {
                            *x = id as u32;
                        }
                    }
                    (None, r)
                } else {
                    let p = spec.profile();
                    let d = pools.get_mut(&p).and_then(|v| v.pop()).ok_or_else(|| {
                        SimError::Config(format!(
                            "attack[{si}]: no provisioned {p} device left for instance {k}"
                        ))
                    })?;
                    dev_instance[d as usize] = id as u32;
                    (Some(d), 0..0)
                };
                instances.push(Instance {
                    id,
                    kind: spec.kind,
                    device,
                    extras,
                    onset_ms,
                    until_ms,
                    rate: spec.rate(),
                    rng: rng(s.seed, attack_stream(id)),
                    phase: Phase::Pending,
                    step: Step::None,
                    gap_ms: 0,
                    first_ms: None,
                    last_ms: None,
                    flows: 0,
                    packets: 0,
                    bytes: 0,
                    records: 0,
                    target: Ipv4Addr::UNSPECIFIED,
                    src_port: 0,
                    probes: 0,
                    port_23: 0,
                    port_2323: 0,
                    origin: None,
                    dest_country: 0,
                    abroad: false,
                    returning: false,
                    cell: None,
                    last_fired_ms: None,
                    detail: Map::new(),
                });
            }
        }
        let mut firmware: Vec<Vec<(u64, u64)>> = vec![Vec::new(); sims.len()];
        let mut frng = rng(s.seed, STREAM_BENIGN_PLAN);
        for fu in &s.benign.firmware_update {
            let from = start.saturating_add(fu.at.as_ms());
            for d in sims.iter().take(base as usize) {
                if d.profile != fu.profile || dev_instance[d.index as usize] != NONE {
                    continue;
                }
                let take = frng.gen_bool(fu.share.clamp(0.0, 1.0));
                let due = from + frng.gen_range(0..fu.window.as_ms().max(1));
                if take && due < end_ms {
                    let v = &mut firmware[d.index as usize];
                    v.push((due, fu.bytes));
                    v.sort_unstable();
                }
            }
        }
        Ok(Overlay {
            instances,
            dev_instance,
            firmware,
            out: Vec::new(),
            base_devices: base,
            firmware_downloads: 0,
            scratch_ports: Vec::new(),
        })
    }

    /// The onsets, to seed the scheduler with.
    pub fn initial_events(&self) -> Vec<(usize, u64)> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, x)| (i, x.onset_ms))
            .collect()
    }

    /// An overlay event at `t`.
    pub fn on_event(&mut self, id: usize, t: u64, devices: &mut [Device], sched: &mut Vec<Sched>) {
        let Some(inst) = self.instances.get_mut(id) else {
            return;
        };
        match inst.phase {
            Phase::Pending => onset(inst, id, t, devices, sched),
            Phase::Active if inst.kind.is_flood() => {
                if let Some(d) = inst.device {
                    if let Some(dev) = devices.get_mut(d as usize) {
                        flood_tick(inst, &mut self.scratch_ports, dev, t, &mut self.out);
                    }
                }
                if t + 1_000 <= inst.until_ms {
                    sched.push(Sched::Event(id, t + 1_000));
                } else {
                    inst.phase = Phase::Done;
                }
            }
            Phase::Active => end(inst, t, devices, sched),
            Phase::Ending | Phase::Done => {}
        }
    }

    /// After device `idx` fired `rec` (and before it is encoded): the attack's hooks,
    /// and the benign firmware download.
    pub fn after_fire(
        &mut self,
        idx: usize,
        dev: &mut Device,
        rec: &Record,
        sched: &mut Vec<Sched>,
    ) {
        let id = self.dev_instance.get(idx).copied().unwrap_or(NONE);
        if id == NONE {
            self.firmware(idx, dev, rec);
            return;
        }
        let Some(inst) = self.instances.get_mut(id as usize) else {
            return;
        };
        inst.last_fired_ms = Some(rec.time_ms);
        hook(inst, dev, rec, sched);
    }

    fn firmware(&mut self, idx: usize, dev: &mut Device, rec: &Record) {
        let Some(list) = self.firmware.get_mut(idx) else {
            return;
        };
        let Some(&(due, bytes)) = list.first() else {
            return;
        };
        let t = rec.time_ms;
        if rec.kind == Kind::Start || t < due {
            return;
        }
        let Some(u) = rec.usage else {
            return;
        };
        let Some(s) = dev.session.as_mut() else {
            return;
        };
        let Some(ip) = s.framed_ip else {
            return;
        };
        list.remove(0);
        // HTTPS download at about 200 kB/s, within the record's window.
        let down_pkts = bytes.div_ceil(1_400);
        let up_pkts = (down_pkts / 2).max(1);
        let up = up_pkts * 52 + 400;
        let span = (bytes / 200).max(1_000);
        let start = t.saturating_sub(span).max(u.from_ms);
        let port = 49_152 + (dev.index as u16 % 16_000) + (self.firmware_downloads as u16 % 7);
        s.add_carried(up, up_pkts, bytes, down_pkts);
        let flags = SYN | ACK | PSH | FIN;
        let secs = t / 1_000;
        self.out.push(OutFlow {
            device: dev.index,
            export_secs: secs,
            uplink: true,
            record: FlowRecord {
                src: ip,
                dst: FIRMWARE_SERVER,
                src_port: port,
                dst_port: 443,
                proto: PROTO_TCP,
                tcp_flags: flags,
                octets: up,
                packets: up_pkts,
                start_ms: start,
                end_ms: t,
            },
        });
        self.out.push(OutFlow {
            device: dev.index,
            export_secs: secs,
            uplink: false,
            record: FlowRecord {
                src: FIRMWARE_SERVER,
                dst: ip,
                src_port: 443,
                dst_port: port,
                proto: PROTO_TCP,
                tcp_flags: flags,
                octets: bytes,
                packets: down_pkts,
                start_ms: start,
                end_ms: t,
            },
        });
        self.firmware_downloads += 1;
    }

    /// The labels of everything injected, ordered by onset; instances that never got
    /// to inject anything (a device that was never reachable in the window) are left
    /// out with a warning.
    pub fn labels(&self, devices: &[Device]) -> Vec<Label> {
        let mut out = Vec::new();
        for inst in &self.instances {
            let (Some(first), Some(last)) = (inst.first_ms, inst.last_ms) else {
                tracing::warn!(attack = %inst.kind, device = ?inst.device, "attack injected nothing; no label");
                continue;
            };
            let mut detail = inst.detail.clone();
            detail.insert("onset_ms".into(), json!(inst.onset_ms));
            detail.insert("until_ms".into(), json!(inst.until_ms));
            if inst.kind.is_flood() {
                detail.insert("flows".into(), json!(inst.flows));
                detail.insert("packets".into(), json!(inst.packets));
                detail.insert("bytes".into(), json!(inst.bytes));
                detail.insert("rate".into(), json!(inst.rate));
            }
            if inst.records > 0 {
                detail.insert("records".into(), json!(inst.records));
            }
            let dev = inst.device.and_then(|d| devices.get(d as usize));
            let mut label = Label {
                attack: inst.kind,
                imsi: dev.map(|d| d.imsi.clone()),
                device: dev.map(|d| d.index),
                profile: dev.map(|d| d.profile),
                group: dev.map(|d| placement(d.profile).group.to_string()),
                start_ms: first,
                end_ms: last,
                cell: None,
                detail: Value::Object(detail),
            };
            if inst.kind == AttackKind::CellOverload {
                label.cell = inst.cell.map(|c| c.cell_text());
                let extras: Vec<&Device> = inst
                    .extras
                    .clone()
                    .filter_map(|i| devices.get(i as usize))
                    .collect();
                if let Value::Object(m) = &mut label.detail {
                    m.insert("devices".into(), json!(extras.len()));
                    if let Some(p) = extras.first().map(|d| d.profile) {
                        m.insert("profile".into(), json!(p));
                        m.insert("group".into(), json!(placement(p).group));
                    }
                    m.insert(
                        "imsis".into(),
                        json!(extras.iter().map(|d| d.imsi.as_str()).collect::<Vec<_>>()),
                    );
                }
            }
            out.push(label);
        }
        out.sort_by_key(|l| (l.start_ms, l.attack, l.device));
        out
    }

    /// Devices of the regular fleet that no attack touched.
    pub fn is_attacked(&self, idx: u32) -> bool {
        self.dev_instance
            .get(idx as usize)
            .is_some_and(|x| *x != NONE)
    }

    pub fn base_devices(&self) -> u32 {
        self.base_devices
    }

    pub fn benign_counts(&self, devices: &[Device]) -> BenignCounts {
        let mut c = BenignCounts {
            firmware_downloads: self.firmware_downloads,
            ..BenignCounts::default()
        };
        for d in devices {
            c.dst_shifts += u64::from(d.tweaks.dst_shifts);
            c.border_crossings += u64::from(d.tweaks.crossings);
        }
        c
    }
}

fn uniform(r: &mut ChaCha8Rng, lo_ms: u64, hi_ms: u64) -> u64 {
    if hi_ms <= lo_ms {
        lo_ms
    } else {
        r.gen_range(lo_ms..=hi_ms)
    }
}

/// The attack's onset.
fn onset(inst: &mut Instance, id: usize, t: u64, devices: &mut [Device], sched: &mut Vec<Sched>) {
    if inst.kind == AttackKind::CellOverload {
        overload_onset(inst, t, devices, sched);
        return;
    }
    let Some(d) = inst.device else {
        return;
    };
    let Some(dev) = devices.get_mut(d as usize) else {
        return;
    };
    let until = inst.until_ms;
    inst.phase = Phase::Active;
    match inst.kind {
        k if k.is_flood() => {
            flood_setup(inst, dev);
            if dev.in_session() {
                dev.hold_session(until + 1_000, t);
                sched.push(Sched::Event(id, t + 1_000));
            } else {
                // A per-report device attaches for the attack; the bot starts once
                // the session is up.
                dev.force(Action::Start, t);
                sched.push(Sched::Event(id, t + 2_000));
            }
            sched.push(Sched::Device(d));
        }
        AttackKind::VolumeSpikeX10 | AttackKind::VolumeSpikeX100 => {
            let f = if inst.kind == AttackKind::VolumeSpikeX10 {
                10
            } else {
                100
            };
            dev.tweaks.up_factor = f;
            inst.detail.insert("factor".into(), json!(f));
            sched.push(Sched::Event(id, until));
        }
        AttackKind::RhythmChange => {
            dev.tweaks.interval_ms = Some(60_000);
            inst.detail.insert("interval_secs".into(), json!(60));
            inst.detail.insert(
                "profile_interval_secs".into(),
                json!(dev.profile.report_interval_secs()),
            );
            if dev.in_session() {
                dev.hold_session(0, t);
            } else {
                dev.force(Action::Start, t);
            }
            sched.push(Sched::Device(d));
            sched.push(Sched::Event(id, until));
        }
        AttackKind::SimSwapPhone => {
            let (tac, name) = PHONES[inst.rng.gen_range(0..PHONES.len())];
            let serial: u32 = inst.rng.gen_range(0..1_000_000);
            let sv: u8 = inst.rng.gen_range(1..20);
            let new = format!("{tac}{serial:06}{sv:02}");
            inst.detail.insert("old_imeisv".into(), json!(dev.imeisv));
            inst.detail.insert(
                "old_tac".into(),
                json!(&dev.imeisv[..8.min(dev.imeisv.len())]),
            );
            inst.detail.insert("new_imeisv".into(), json!(new));
            inst.detail.insert("new_tac".into(), json!(tac));
            inst.detail.insert("handset".into(), json!(name));
            inst.gap_ms = uniform(&mut inst.rng, 60_000, 300_000);
            relocate_or_restart(inst, dev, t);
            sched.push(Sched::Device(d));
        }
        AttackKind::RoamingDisallowed => {
            let here = dev.loc.country;
            // A truck reaches a non-allowed neighbour in minutes; from elsewhere the
            // SIM is flown there (an hour to and from the airports, 700 km/h between).
            let (dest, gap) = match geo::COUNTRIES[usize::from(here) % geo::COUNTRIES.len()].iso {
                "DE" | "FR" | "AT" => (geo::CH, uniform(&mut inst.rng, 60_000, 300_000)),
                "PL" => (geo::UA, uniform(&mut inst.rng, 60_000, 300_000)),
                _ => {
                    let km = geo::distance_km(here, geo::CH);
                    (geo::CH, 3_600_000 + ((km / 700.0) * 3_600_000.0) as u64)
                }
            };
            inst.origin = Some(dev.loc);
            inst.dest_country = dest;
            inst.gap_ms = gap;
            inst.detail
                .insert("from_network".into(), json!(dev.loc.network_text()));
            inst.detail
                .insert("from_country".into(), json!(dev.loc.country().iso));
            inst.detail.insert(
                "country".into(),
                json!(geo::COUNTRIES[usize::from(dest)].iso),
            );
            inst.detail.insert("gap_secs".into(), json!(gap / 1_000));
            relocate_or_restart(inst, dev, t);
            sched.push(Sched::Device(d));
            // The stay abroad lasts `duration` from the arrival; see `hook`.
        }
        AttackKind::ImpossibleTravel => {
            if !dev.in_session() {
                // Between sessions: try again once the device is back.
                inst.phase = Phase::Pending;
                let retry = dev.next_ms.saturating_add(60_000);
                if retry < u64::MAX / 2 {
                    sched.push(Sched::Event(id, retry));
                }
                return;
            }
            let here = dev.loc.country;
            let dest = if geo::distance_km(here, geo::PT) >= geo::distance_km(here, geo::GR) {
                geo::PT
            } else {
                geo::GR
            };
            inst.origin = Some(dev.loc);
            inst.dest_country = dest;
            inst.gap_ms = uniform(&mut inst.rng, 60_000, 240_000);
            inst.detail
                .insert("from_cell".into(), json!(dev.loc.cell_text()));
            inst.detail
                .insert("from_country".into(), json!(dev.loc.country().iso));
            inst.detail.insert(
                "to_country".into(),
                json!(geo::COUNTRIES[usize::from(dest)].iso),
            );
            inst.detail.insert(
                "distance_km".into(),
                json!(geo::distance_km(here, dest).round() as u64),
            );
            relocate_or_restart(inst, dev, t);
            sched.push(Sched::Device(d));
        }
        AttackKind::Silent => {
            if dev.next_ms < inst_end(inst) {
                inst.first_ms = Some(dev.next_ms);
                inst.last_ms = Some(inst_end(inst));
                inst.detail.insert(
                    "last_record_ms".into(),
                    json!(inst
                        .last_fired_ms
                        .or(dev.session.as_ref().map(|s| s.last_report_ms))),
                );
            }
            let a = dev.next_action();
            dev.force(a, u64::MAX);
            sched.push(Sched::Device(d));
            inst.phase = Phase::Done;
        }
        AttackKind::Flapping => {
            if dev.in_session() {
                dev.force(Action::Stop(CAUSE_LOST_CARRIER), t);
            } else {
                dev.force(Action::Start, t);
            }
            sched.push(Sched::Device(d));
            sched.push(Sched::Event(id, until));
        }
        _ => {}
    }
}

/// Silent devices stay silent to the end of the run.
fn inst_end(inst: &Instance) -> u64 {
    inst.until_ms.max(inst.onset_ms)
}

/// Stop now (if in a session) and Start `gap_ms` later, or just Start if idle; the
/// Start takes the new identity or place (see [`hook`]).
fn relocate_or_restart(inst: &mut Instance, dev: &mut Device, t: u64) {
    if dev.in_session() {
        dev.force(Action::Stop(CAUSE_LOST_CARRIER), t);
        inst.step = Step::AwaitStop;
    } else {
        dev.force(Action::Start, t + inst.gap_ms.min(300_000));
        inst.step = Step::AwaitStart;
    }
}

fn end(inst: &mut Instance, t: u64, devices: &mut [Device], sched: &mut Vec<Sched>) {
    let Some(d) = inst.device else {
        inst.phase = Phase::Done;
        return;
    };
    let Some(dev) = devices.get_mut(d as usize) else {
        return;
    };
    match inst.kind {
        AttackKind::VolumeSpikeX10 | AttackKind::VolumeSpikeX100 => {
            dev.tweaks.up_factor = 1;
            inst.phase = Phase::Done;
        }
        AttackKind::RhythmChange => {
            dev.tweaks.interval_ms = None;
            inst.phase = Phase::Done;
        }
        AttackKind::Flapping => inst.phase = Phase::Ending,
        AttackKind::RoamingDisallowed => {
            inst.phase = Phase::Done;
            if !inst.abroad {
                return;
            }
            inst.returning = true;
            // Back the way it came: over the border in minutes, or flown back.
            if inst.gap_ms <= 300_000 {
                inst.gap_ms = uniform(&mut inst.rng, 60_000, 300_000);
            }
            if dev.in_session() {
                dev.force(Action::Stop(CAUSE_LOST_CARRIER), t);
                inst.step = Step::AwaitStop;
                sched.push(Sched::Device(d));
            } else {
                // Idle: the next session simply starts at home again.
                back_home(inst, dev);
            }
        }
        _ => inst.phase = Phase::Done,
    }
}

fn back_home(inst: &mut Instance, dev: &mut Device) {
    if let Some(o) = inst.origin {
        dev.loc = Location::random_in(&mut inst.rng, o.country);
    }
    inst.abroad = false;
    inst.returning = false;
    inst.step = Step::None;
}

/// Per-record hook of an attacked device.
fn hook(inst: &mut Instance, dev: &mut Device, rec: &Record, sched: &mut Vec<Sched>) {
    let t = rec.time_ms;
    let d = dev.index;
    match inst.kind {
        // Keep the session up for the whole flood, also one the device starts anew.
        k if k.is_flood() && rec.kind == Kind::Start && inst.phase == Phase::Active => {
            dev.hold_session(inst.until_ms + 1_000, t);
        }
        AttackKind::VolumeSpikeX10 | AttackKind::VolumeSpikeX100
            if inst.phase == Phase::Active && rec.usage.is_some_and(|u| u.up > 0) =>
        {
            inst.touch(t, t);
            inst.records += 1;
        }
        AttackKind::RhythmChange if inst.phase == Phase::Active => {
            inst.touch(t, t);
            inst.records += 1;
        }
        AttackKind::Flapping => {
            if matches!(inst.phase, Phase::Active | Phase::Ending) {
                inst.touch(t, t);
                inst.records += 1;
                if inst.phase == Phase::Ending {
                    inst.phase = Phase::Done;
                    return;
                }
                match rec.kind {
                    Kind::Stop => {
                        let gap = uniform(&mut inst.rng, 2_000, 5_000);
                        dev.force(Action::Start, t + gap);
                    }
                    Kind::Start => {
                        let up = uniform(&mut inst.rng, 25_000, 55_000);
                        dev.force(Action::Stop(CAUSE_LOST_CARRIER), t + up);
                    }
                    Kind::Interim => {}
                }
                sched.push(Sched::Device(d));
            }
        }
        AttackKind::SimSwapPhone => match (inst.step, rec.kind) {
            (Step::AwaitStop, Kind::Stop) => {
                dev.force(Action::Start, t + inst.gap_ms);
                inst.step = Step::AwaitStart;
                sched.push(Sched::Device(d));
            }
            (Step::AwaitStart, Kind::Start) => {
                if let Some(Value::String(new)) = inst.detail.get("new_imeisv") {
                    dev.imeisv = new.clone();
                }
                // A handset attaches over LTE.
                dev.rat = RatType::EUTRAN;
                inst.step = Step::None;
                inst.abroad = true;
                inst.touch(t, t);
                inst.records += 1;
            }
            _ if inst.abroad => {
                inst.touch(t, t);
                inst.records += 1;
            }
            _ => {}
        },
        AttackKind::RoamingDisallowed => match (inst.step, rec.kind) {
            (Step::AwaitStop, Kind::Stop) => {
                dev.force(Action::Start, t + inst.gap_ms);
                inst.step = Step::AwaitStart;
                sched.push(Sched::Device(d));
                if inst.abroad {
                    inst.touch(t, t);
                    inst.records += 1;
                }
            }
            (Step::AwaitStart, Kind::Start) if inst.returning => {
                back_home(inst, dev);
            }
            (Step::AwaitStart, Kind::Start) => {
                dev.loc = Location::random_in(&mut inst.rng, inst.dest_country);
                // The stay abroad lasts the attack's duration from the arrival.
                let stay = inst.until_ms.saturating_sub(inst.onset_ms);
                sched.push(Sched::Event(inst.id, t.saturating_add(stay)));
                inst.detail
                    .insert("to_network".into(), json!(dev.loc.network_text()));
                inst.detail
                    .insert("to_cell".into(), json!(dev.loc.cell_text()));
                inst.step = Step::None;
                inst.abroad = true;
                inst.touch(t, t);
                inst.records += 1;
            }
            _ if inst.abroad => {
                inst.touch(t, t);
                inst.records += 1;
            }
            _ => {}
        },
        AttackKind::ImpossibleTravel => match (inst.step, rec.kind) {
            (Step::AwaitStop, Kind::Stop) => {
                inst.detail.insert("from_ms".into(), json!(t));
                dev.force(Action::Start, t + inst.gap_ms);
                inst.step = Step::AwaitStart;
                sched.push(Sched::Device(d));
            }
            (Step::AwaitStart, Kind::Start) => {
                dev.loc = Location::random_in(&mut inst.rng, inst.dest_country);
                inst.detail
                    .insert("to_cell".into(), json!(dev.loc.cell_text()));
                if let Some(Value::Number(from)) = inst.detail.get("from_ms") {
                    let from = from.as_u64().unwrap_or(t);
                    inst.detail
                        .insert("seconds".into(), json!((t - from.min(t)) / 1_000));
                }
                inst.step = Step::None;
                inst.phase = Phase::Done;
                inst.touch(t, t);
                inst.records += 1;
            }
            _ => {}
        },
        AttackKind::CellOverload
            if rec.kind == Kind::Start && t <= inst.until_ms.saturating_add(1_000) =>
        {
            inst.touch(t, t);
            inst.records += 1;
        }
        _ => {}
    }
}

fn overload_onset(inst: &mut Instance, t: u64, devices: &mut [Device], sched: &mut Vec<Sched>) {
    inst.phase = Phase::Active;
    let cell = Location::random_static(&mut inst.rng);
    inst.cell = Some(cell);
    let span = inst.until_ms.saturating_sub(t);
    for i in inst.extras.clone() {
        let at = t + uniform(&mut inst.rng, 0, span);
        let Some(dev) = devices.get_mut(i as usize) else {
            continue;
        };
        dev.loc = cell;
        // One cell: every extra device reports the same TAI+ECGI.
        if matches!(dev.rat, RatType::GERAN | RatType::UTRAN) {
            dev.rat = RatType::LTE_M;
        }
        dev.force(Action::Start, at);
        sched.push(Sched::Device(i));
    }
    inst.detail
        .insert("network".into(), json!(cell.network_text()));
}

/// Kind-specific fixed choices of a flood: victim, resolver, destination, bot port.
fn flood_setup(inst: &mut Instance, dev: &Device) {
    let r = &mut inst.rng;
    inst.src_port = r.gen_range(1_024..=65_535);
    match inst.kind {
        AttackKind::MiraiScan => {
            inst.detail.insert("src_port".into(), json!(inst.src_port));
            inst.detail.insert("dst_ports".into(), json!([23, 2323]));
        }
        AttackKind::DnsWaterTorture => {
            inst.target = RESOLVERS[r.gen_range(0..RESOLVERS.len())];
            let domain: String = (0..8)
                .map(|_| char::from(b'a' + r.gen_range(0..26u8)))
                .collect();
            inst.detail
                .insert("resolver".into(), json!(inst.target.to_string()));
            inst.detail
                .insert("domain".into(), json!(format!("{domain}.com")));
        }
        AttackKind::Exfiltration => {
            inst.target = foreign_target(r);
            inst.detail
                .insert("destination".into(), json!(inst.target.to_string()));
            inst.detail.insert("dst_port".into(), json!(443));
        }
        _ => {
            inst.target = foreign_target(r);
            let (proto, size) = flood_shape(inst.kind);
            inst.detail
                .insert("target".into(), json!(inst.target.to_string()));
            inst.detail.insert("proto".into(), json!(proto));
            inst.detail.insert("packet_bytes".into(), json!(size));
        }
    }
    let _ = dev;
}

/// (IP protocol, bytes per packet) of the DDoS vectors.
fn flood_shape(kind: AttackKind) -> (u8, u64) {
    match kind {
        AttackKind::DdosUdp => (PROTO_UDP, 540),
        AttackKind::DdosSyn => (PROTO_TCP, 60),
        AttackKind::DdosAck => (PROTO_TCP, 552),
        AttackKind::DdosGre => (PROTO_GRE, 564),
        _ => (PROTO_UDP, 0),
    }
}

/// One second `[t - 1000, t)` of a flood, as an exporter whose cache expires short
/// flows within a second would report it.
fn flood_tick(
    inst: &mut Instance,
    ports: &mut Vec<u16>,
    dev: &mut Device,
    t: u64,
    out: &mut Vec<OutFlow>,
) {
    if !dev.in_session() {
        return;
    }
    let Some(s) = dev.session.as_mut() else {
        return;
    };
    let Some(ip) = s.framed_ip else {
        return;
    };
    let from = t.saturating_sub(1_000).max(s.start_ms + 1);
    if from >= t {
        return;
    }
    let span = t - from;
    let secs = t / 1_000;
    let dev_index = dev.index;
    let r = &mut inst.rng;
    let n0 = out.len();
    let (mut up, mut up_p, mut down, mut down_p) = (0u64, 0u64, 0u64, 0u64);
    let mut push = |out: &mut Vec<OutFlow>, uplink: bool, rec: FlowRecord| {
        if uplink {
            up += rec.octets;
            up_p += rec.packets;
        } else {
            down += rec.octets;
            down_p += rec.packets;
        }
        out.push(OutFlow {
            device: dev_index,
            export_secs: secs,
            uplink,
            record: rec,
        });
    };
    match inst.kind {
        AttackKind::MiraiScan => {
            let n = inst.rate;
            for i in 0..n {
                let dst = mirai_target(r);
                // Every tenth probe goes to 2323, the rest to 23.
                let port = if inst.probes % 10 == 9 { 2_323 } else { 23 };
                if port == 23 {
                    inst.port_23 += 1;
                } else {
                    inst.port_2323 += 1;
                }
                inst.probes += 1;
                // The burst leaves when the bot's one-second clock ticks.
                let at = from + (i * 20 / n.max(1)).min(span - 1);
                push(
                    out,
                    true,
                    FlowRecord {
                        src: ip,
                        dst,
                        src_port: inst.src_port,
                        dst_port: port,
                        proto: PROTO_TCP,
                        tcp_flags: SYN,
                        octets: 40,
                        packets: 1,
                        start_ms: at,
                        end_ms: at,
                    },
                );
            }
            inst.detail.insert("port_23".into(), json!(inst.port_23));
            inst.detail
                .insert("port_2323".into(), json!(inst.port_2323));
        }
        AttackKind::DdosUdp | AttackKind::DdosSyn | AttackKind::DdosAck => {
            let (proto, size) = flood_shape(inst.kind);
            let flags = match inst.kind {
                AttackKind::DdosSyn => SYN,
                AttackKind::DdosAck => ACK,
                _ => 0,
            };
            ports.clear();
            ports.extend((0..inst.rate).map(|_| r.gen_range(1..=65_535u16)));
            ports.sort_unstable();
            let mut i = 0;
            while i < ports.len() {
                let p = ports[i];
                let mut j = i;
                while j < ports.len() && ports[j] == p {
                    j += 1;
                }
                let c = (j - i) as u64;
                let (a, b) = if c == 1 {
                    let a = from + r.gen_range(0..span);
                    (a, a)
                } else {
                    (
                        from + r.gen_range(0..span / 4 + 1),
                        t - 1 - r.gen_range(0..span / 4 + 1),
                    )
                };
                push(
                    out,
                    true,
                    FlowRecord {
                        src: ip,
                        dst: inst.target,
                        src_port: r.gen_range(1_024..=65_535),
                        dst_port: p,
                        proto,
                        tcp_flags: flags,
                        octets: c * size,
                        packets: c,
                        start_ms: a,
                        end_ms: b.max(a),
                    },
                );
                i = j;
            }
        }
        AttackKind::DdosGre => {
            let (proto, size) = flood_shape(inst.kind);
            push(
                out,
                true,
                FlowRecord {
                    src: ip,
                    dst: inst.target,
                    src_port: 0,
                    dst_port: 0,
                    proto,
                    tcp_flags: 0,
                    octets: inst.rate * size,
                    packets: inst.rate,
                    start_ms: from,
                    end_ms: t - 1,
                },
            );
        }
        AttackKind::DnsWaterTorture => {
            for _ in 0..inst.rate {
                let a = from + r.gen_range(0..span);
                push(
                    out,
                    true,
                    FlowRecord {
                        src: ip,
                        dst: inst.target,
                        src_port: r.gen_range(1_024..=65_535),
                        dst_port: 53,
                        proto: PROTO_UDP,
                        tcp_flags: 0,
                        octets: r.gen_range(70..=90),
                        packets: 1,
                        start_ms: a,
                        end_ms: a,
                    },
                );
            }
        }
        AttackKind::Exfiltration => {
            let first = inst.flows == 0;
            let last = t + 1_000 > inst.until_ms;
            let flags = ACK | PSH | if first { SYN } else { 0 } | if last { FIN } else { 0 };
            let bytes = inst.rate.max(40);
            let pkts = bytes.div_ceil(1_400);
            let acks = pkts.div_ceil(2);
            push(
                out,
                true,
                FlowRecord {
                    src: ip,
                    dst: inst.target,
                    src_port: inst.src_port,
                    dst_port: 443,
                    proto: PROTO_TCP,
                    tcp_flags: flags,
                    octets: bytes,
                    packets: pkts,
                    start_ms: from,
                    end_ms: t - 1,
                },
            );
            push(
                out,
                false,
                FlowRecord {
                    src: inst.target,
                    dst: ip,
                    src_port: 443,
                    dst_port: inst.src_port,
                    proto: PROTO_TCP,
                    tcp_flags: flags & !PSH,
                    octets: acks * 52,
                    packets: acks,
                    start_ms: from,
                    end_ms: t - 1,
                },
            );
        }
        _ => {}
    }
    s.add_carried(up, up_p, down, down_p);
    let new = &out[n0..];
    if let (Some(a), Some(b)) = (
        new.iter().map(|f| f.record.start_ms).min(),
        new.iter().map(|f| f.record.end_ms).max(),
    ) {
        inst.touch(a, b);
    }
    inst.flows += new.len() as u64;
    inst.packets += up_p + down_p;
    inst.bytes += up + down;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirai_exclusions_match_the_source() {
        for a in [
            "10.1.2.3",
            "127.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.126.9.9",
            "198.18.0.1",
            "198.19.255.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.1.2.3",
            "3.3.3.3",
            "215.1.1.1",
            "28.0.0.1",
            "30.9.9.9",
        ] {
            assert!(mirai_excluded(a.parse().unwrap()), "{a}");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "169.254.1.1",
            "100.127.0.1",
            "172.32.0.1",
            "172.15.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "31.0.0.1",
        ] {
            assert!(!mirai_excluded(a.parse().unwrap()), "{a}");
        }
    }
}
