//! The engine: a pure, deterministic fold of journal events into state.
//!
//! `apply(seq, event)` is the only way state changes. The same events in the
//! same order always give the same state and the same outputs, which is what
//! makes snapshot + replay recovery, backtests and later scale-out possible.

use crate::detect::{AcctCtx, DetectOptions, Detection, Names, Sink};
use crate::device::{session_key, Device, LivenessOptions, Provisioning, RecordSyms, Sym};
use crate::event::{AcctRecord, AcctStatus, Event, FlowRecord};
use crate::finding::FindingKind;
use crate::ids::Digits;
use crate::inventory::{DeviceRecord, Group, Lifecycle, Tenant};
use crate::iptable::{DeviceRef, IpTable};
use crate::policy::FirewallPolicy;
use crate::rules::{
    strength, Action, ActionKind, ConnectivityEvent, Rule, RuleMode, RuleState, Signal, Trigger,
    UsageLimit, UsagePeriod,
};
use crate::time::{month_start, DAY_MS, HOUR_MS};
use crate::traffic::{FlowDirection, RecentFlow, Ring, TrafficProfile};
use crate::Output;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

mod flow_batch;

/// Partitions by IMSI. Fixed, because it is part of the snapshot; flow
/// batches spread them over up to this many threads (`flow_batch`), and
/// later machines.
pub const PARTITIONS: usize = 16;

/// Most distinct interned strings (APNs, NAS names, ids). Past it, new values
/// share one "other" symbol, so a misbehaving NAS cannot grow memory forever.
pub const MAX_SYMBOLS: usize = 1 << 20;

/// Unattributed flows kept for inspection (engine-wide).
pub const UNATTRIBUTED_LOG: usize = 1000;

/// Flows per prefetch round (see `flow_batch`).
const FLOW_ROUND: usize = 64;

/// Engine-wide options; fixed for the life of a journal (stored in snapshots).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct EngineOptions {
    pub liveness: LivenessOptions,
    pub flows: FlowOptions,
    pub detect: DetectOptions,
}

/// How flows are attributed to devices.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FlowOptions {
    /// A flow this close (ms) to a holder's tenure of an address, and inside
    /// no tenure, is attributed to that holder: exporters' and NASes' clocks
    /// differ, and flows can start a little before the Start record's time.
    pub attribution_slack_ms: i64,
    /// Tenures that ended this long (ms, event time) ago are forgotten.
    pub address_retention_ms: i64,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            attribution_slack_ms: 60_000,
            address_retention_ms: 7 * DAY_MS,
        }
    }
}

/// A group's firewall policy, with the group id ready for outputs (shared,
/// so that a violation does not allocate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct GroupPolicy {
    group: Arc<str>,
    policy: FirewallPolicy,
}

/// String interner: small integer ids for repeated text.
#[derive(Clone, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interner {
    strings: Vec<Box<str>>,
    #[serde(skip)]
    index: HashMap<Box<str>, Sym>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        if self.strings.len() >= MAX_SYMBOLS {
            return self.intern_overflow();
        }
        let i = self.strings.len() as Sym;
        self.strings.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    fn intern_overflow(&mut self) -> Sym {
        const OTHER: &str = "(other)";
        match self.index.get(OTHER) {
            Some(&i) => i,
            None => {
                let i = self.strings.len() as Sym;
                self.strings.push(OTHER.into());
                self.index.insert(OTHER.into(), i);
                i
            }
        }
    }

    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    pub fn resolve(&self, sym: Sym) -> &str {
        self.strings.get(sym as usize).map_or("", |s| s)
    }

    fn rebuild_index(&mut self) {
        self.index = self
            .strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as Sym))
            .collect();
    }
}

/// One slice of the fleet, keyed by IMSI.
#[derive(Clone, Default, Debug, Serialize, Deserialize)]
pub struct Partition {
    /// The devices in order of first appearance. Devices are never removed,
    /// so a slot never changes: the address table refers to devices by
    /// (partition, slot) and the flow path reaches a device without a search.
    slab: Slab,
    /// IMSI → slot, ordered so that API pagination by IMSI is a range scan.
    /// Derived from `slab` (rebuilt when a snapshot is loaded).
    #[serde(skip)]
    index: BTreeMap<Digits, u32>,
    /// At most one pending timer per device with an open session: when one
    /// fires early (the deadline moved), it is re-armed at the new deadline.
    /// Ordered (deadline, IMSI) pairs; ordered, not a heap, so that a
    /// snapshot of the same state always encodes to the same bytes.
    timers: BTreeSet<(i64, Digits)>,
    /// Devices that currently have a timer in `timers`.
    armed: BTreeSet<Digits>,
}

/// Most devices per partition: slots are 28 bits of a [`DeviceRef`].
const MAX_SLOTS: usize = 1 << 28;

/// Devices per slab chunk.
const CHUNK: usize = 256;

/// Devices by slot, stored inline in fixed-capacity chunks: a slot's address
/// is computed, not loaded (the flow path prefetches it), growing never
/// moves devices, and unused capacity is under one chunk per partition.
#[derive(Clone, Default, Debug)]
struct Slab {
    chunks: Vec<Vec<Device>>,
    len: usize,
}

impl Slab {
    fn push(&mut self, d: Device) -> usize {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(d);
        }
        self.len += 1;
        self.len - 1
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &Device> + '_ {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for Slab {
    type Output = Device;
    fn index(&self, i: usize) -> &Device {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slab {
    fn index_mut(&mut self, i: usize) -> &mut Device {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Snapshot form: the devices in slot order.
impl Serialize for Slab {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len))?;
        for d in self.iter() {
            seq.serialize_element(d)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Slab {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Slab, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Slab;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of devices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Slab, A::Error> {
                let mut slab = Slab::default();
                while let Some(d) = a.next_element::<Device>()? {
                    if slab.len() >= MAX_SLOTS {
                        return Err(serde::de::Error::custom("too many devices in a partition"));
                    }
                    slab.push(d);
                }
                Ok(slab)
            }
        }
        d.deserialize_seq(V)
    }
}

fn device_ref(part: usize, slot: usize) -> DeviceRef {
    ((part as u32) << 28) | slot as u32
}

fn split_ref(r: DeviceRef) -> (usize, usize) {
    ((r >> 28) as usize, (r & (MAX_SLOTS as u32 - 1)) as usize)
}

impl Partition {
    fn get(&self, imsi: &Digits) -> Option<&Device> {
        self.index.get(imsi).map(|&i| &self.slab[i as usize])
    }

    fn get_mut(&mut self, imsi: &Digits) -> Option<&mut Device> {
        let i = *self.index.get(imsi)?;
        Some(&mut self.slab[i as usize])
    }

    /// The device's slot, adding the device (via `new`) if it is not there yet.
    fn slot_or_insert(&mut self, imsi: Digits, new: impl FnOnce() -> Device) -> usize {
        if let Some(&i) = self.index.get(&imsi) {
            return i as usize;
        }
        let i = self.slab.len();
        assert!(i < MAX_SLOTS, "more than 2^28 devices in one partition");
        self.slab.push(new());
        self.index.insert(imsi, i as u32);
        i
    }

    /// Devices in IMSI order.
    fn devices(&self) -> impl Iterator<Item = &Device> + '_ {
        self.index.values().map(|&i| &self.slab[i as usize])
    }

    fn len(&self) -> usize {
        self.slab.len()
    }
}

/// Counters of what the engine has seen, for metrics and the API.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub events: u64,
    pub accounting_records: u64,
    /// IMSIs seen in accounting that are not in the inventory.
    pub unprovisioned_seen: u64,
    pub nas_resets: u64,
    pub flow_batches: u64,
    /// Flows attributed to a device.
    pub flows_attributed: u64,
    /// Flows whose addresses no device held at the flow's time.
    pub flows_unattributed: u64,
    /// Attributed flows the device's group policy denied.
    pub policy_violations: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("snapshot is not a simguard engine snapshot")]
    NotASnapshot,
    #[error("snapshot format version {0} is not supported by this build")]
    SnapshotVersion(u8),
    #[error("snapshot is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The whole engine state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Engine {
    /// Sequence number of the last applied journal record.
    seq: u64,
    /// Event time: the newest time any event carried. Never goes back.
    clock: i64,
    options: EngineOptions,
    tenants: BTreeMap<String, Tenant>,
    groups: BTreeMap<String, Group>,
    syms: Interner,
    parts: Vec<Partition>,
    stats: EngineStats,
    /// Who held which address when (see `iptable`).
    ips: IpTable,
    /// Firewall policies by group id (interned).
    policies: BTreeMap<Sym, GroupPolicy>,
    /// The last flows no device could be found for.
    unattributed: Ring<FlowRecord, UNATTRIBUTED_LOG>,
    /// Event time of the next housekeeping pass (address table cleanup).
    next_housekeeping: i64,
    /// Detection state that is not per device (groups, cells, timers).
    detect: Detection,
    /// Findings and actions raised so far by the event being applied (their id index).
    #[serde(skip)]
    finding_index: usize,
    /// Response rules by id.
    rules: BTreeMap<String, Rule>,
    /// Where each device is on each rule's ladder (devices acted on only).
    rule_state: BTreeMap<(Digits, String), RuleState>,
    /// Actions that undo themselves: (when, IMSI, action id) → what to do.
    expiries: BTreeMap<(i64, Digits, u64), Expiry>,
    /// Usage limits exceeded in a period that has not ended yet: (end of
    /// the period, IMSI, limit). When accounting time reaches the end, the
    /// usage is back under the limit and `Output::UsageBackUnder` comes out.
    /// Engine-wide and ordered by time, like `expiries`, rather than on each
    /// device: a tick fires what is due without visiting devices, and a
    /// device that never exceeds anything pays nothing. Bounded per device:
    /// one entry per usage rule (at most `MAX_RULES`) and per-period finding
    /// kind, because a device's counters only ever count the newest period
    /// (the entry of the previous one fired before a newer one can be added).
    /// Encoded after the rest in snapshots (see `encode_snapshot`).
    #[serde(skip)]
    exceeded: BTreeSet<(i64, Digits, Exceeded)>,
    /// Threads that apply a large batch of flows, partition by partition
    /// (see `flow_batch`; 0 and 1 both mean the calling thread only). Not
    /// state: the result is the same for any number.
    #[serde(skip)]
    flow_workers: usize,
    /// Attribution of the batch being applied, kept to reuse its memory.
    #[serde(skip)]
    found_scratch: Vec<flow_batch::Found>,
}

/// Which usage limit an entry of `Engine::exceeded` is about.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
enum Exceeded {
    /// A rule's usage trigger, by its interned id (rule ids are few and
    /// already bounded by `MAX_RULES`; a symbol keeps the entry small).
    Rule(Sym),
    /// A per-period finding kind (`FindingKind::usage_period_end`).
    Finding(FindingKind),
}

/// A pending reversal of an action with an expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Expiry {
    actor: String,
    rule: Option<String>,
    reversal: ActionKind,
    /// The state the action set: reverted only if the device is still in it.
    set: Lifecycle,
}

/// Version 7: new-destination findings have a cooldown slot of their own
/// (`DeviceDetect::new_destination_minute`). 6: groups learn services (provider prefix, port, protocol) for
/// new destinations, so older snapshots are rejected and the journal is
/// replayed. (5: usage limits exceeded in the current period, encoded after
/// the body; 4: response rules; 3: detection; 2: flows.)
const SNAPSHOT_MAGIC: &[u8; 4] = b"SGS7";

impl Engine {
    pub fn new(options: EngineOptions) -> Engine {
        Engine {
            seq: 0,
            clock: 0,
            options,
            tenants: BTreeMap::new(),
            groups: BTreeMap::new(),
            syms: Interner::default(),
            parts: (0..PARTITIONS).map(|_| Partition::default()).collect(),
            stats: EngineStats::default(),
            ips: IpTable::default(),
            policies: BTreeMap::new(),
            unattributed: Ring::default(),
            next_housekeeping: i64::MIN,
            detect: Detection::default(),
            finding_index: 0,
            rules: BTreeMap::new(),
            rule_state: BTreeMap::new(),
            expiries: BTreeMap::new(),
            exceeded: BTreeSet::new(),
            flow_workers: 1,
            found_scratch: Vec::new(),
        }
    }

    /// Threads to apply large batches of flows with (see `flow_batch`);
    /// the state and outputs are the same whatever the number.
    pub fn set_flow_workers(&mut self, n: usize) {
        self.flow_workers = n.clamp(1, PARTITIONS);
    }

    pub fn flow_workers(&self) -> usize {
        self.flow_workers.max(1)
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn clock(&self) -> i64 {
        self.clock
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn syms(&self) -> &Interner {
        &self.syms
    }

    pub fn partition_of(imsi: Digits) -> usize {
        // Multiplicative hash: spreads sequential IMSIs evenly.
        ((imsi.packed().wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 60) as usize % PARTITIONS
    }

    /// Applies the journal record `seq`. Records at or below the current
    /// sequence were already applied (replay overlap) and are ignored.
    pub fn apply(&mut self, seq: u64, event: &Event, out: &mut Vec<Output>) {
        if seq <= self.seq {
            return;
        }
        self.seq = seq;
        self.finding_index = 0;
        let outputs_from = out.len();
        let mut signals: Vec<(Digits, i64, Signal)> = Vec::new();
        self.stats.events += 1;
        if let Some(t) = event.time() {
            self.clock = self.clock.max(t);
        }
        if let Event::Accounting(AcctRecord { time, .. }) | Event::Tick { time } = event {
            self.detect.acct_clock = self.detect.acct_clock.max(*time);
        }
        // Before this event's own outputs: a record of the new period that
        // crosses the limit again then raises a new alert instead of
        // repeating the one that is about to clear.
        self.usage_back_under(out);
        match event {
            Event::Accounting(r) => {
                self.stats.accounting_records += 1;
                let nas = self.syms.intern(&r.nas);
                let apn = r.apn.as_deref().map(|a| self.syms.intern(a));
                let opts = self.options.liveness;
                let p = Self::partition_of(r.imsi);
                let part = &mut self.parts[p];
                let unprovisioned_before = self.stats.unprovisioned_seen;
                let slot = part.slot_or_insert(r.imsi, || {
                    self.stats.unprovisioned_seen += 1;
                    out.push(Output::Unprovisioned {
                        imsi: r.imsi,
                        time: r.time,
                    });
                    Device::new(r.imsi)
                });
                let me = device_ref(p, slot);
                let dev = &mut part.slab[slot];
                if self.stats.unprovisioned_seen != unprovisioned_before {
                    let mut sink = Sink {
                        seq,
                        index: &mut self.finding_index,
                        out,
                    };
                    self.detect.on_unprovisioned(&mut sink, r, seq);
                }
                let up_before = dev.usage.total_up;
                let down_before = dev.usage.total_down;
                let watch = !self.rules.is_empty();
                let country_before = dev.network.and_then(|n| n.country());
                let imei_before = dev.imeisv;
                let month_before = dev.usage.period_up + dev.usage.period_down;
                let day_before = dev
                    .detect
                    .as_deref()
                    .filter(|d| i64::from(d.day) == r.time.div_euclid(DAY_MS))
                    .map_or(0, |d| d.day_up);
                let key = session_key(&r.nas, &r.session_id);
                let was_closed = dev.is_closed_session(key);
                let before = dev
                    .sessions
                    .iter()
                    .find(|s| s.key == key)
                    .map(|s| (s.framed_ip, s.start));
                let outcome = dev.apply_accounting(r, RecordSyms { nas, apn }, &opts, out);
                if outcome.needs_timer && !part.armed.contains(&r.imsi) {
                    part.armed.insert(r.imsi);
                    part.timers.insert((dev.deadline, r.imsi));
                }
                let after = dev
                    .sessions
                    .iter()
                    .find(|s| s.key == key)
                    .map(|s| (s.framed_ip, s.start));
                if let Some((Some(ip), start, last)) = outcome.evicted {
                    self.ips.close(IpAddr::V4(ip), me, start, r.time.max(last));
                }
                if !was_closed {
                    track_address(&mut self.ips, me, r, before, after);
                    let up = dev.usage.total_up.saturating_sub(up_before);
                    let down = dev.usage.total_down.saturating_sub(down_before);
                    let prov = dev
                        .provisioning
                        .as_ref()
                        .map(|p| (p.tenant, p.group, p.bound_imei));
                    let syms = &self.syms;
                    let group = prov
                        .and_then(|(_, g, _)| self.groups.get(syms.resolve(g)).map(|grp| (g, grp)));
                    let cx = AcctCtx {
                        record: r,
                        up,
                        down,
                        group,
                        bound_imei: prov.and_then(|(_, _, b)| b),
                        names: Names {
                            tenant: prov.map(|(t, _, _)| syms.resolve(t)),
                            group: prov.map(|(_, g, _)| syms.resolve(g)),
                        },
                        apn,
                        picked_up: before.is_none() && r.status != AcctStatus::Start,
                    };
                    let findings_from = out.len();
                    let mut sink = Sink {
                        seq,
                        index: &mut self.finding_index,
                        out,
                    };
                    self.detect
                        .on_accounting(&self.options.detect, &mut sink, dev, &cx);
                    for o in &out[findings_from..] {
                        if let Output::Finding(f) = o {
                            if let (Some(end), Some(imsi)) =
                                (f.kind.usage_period_end(f.time), f.imsi())
                            {
                                self.exceeded.insert((end, imsi, Exceeded::Finding(f.kind)));
                            }
                        }
                    }
                    if watch {
                        rule_signals(
                            dev,
                            r,
                            country_before,
                            imei_before,
                            month_before,
                            day_before,
                            &mut signals,
                        );
                    }
                }
            }
            Event::NasReset(n) => {
                self.stats.nas_resets += 1;
                let nas = self.syms.intern(&n.nas);
                for (p, part) in self.parts.iter_mut().enumerate() {
                    // IMSI order, as before slots existed: it orders the outputs.
                    for &slot in part.index.values() {
                        let dev = &mut part.slab[slot as usize];
                        let me = device_ref(p, slot as usize);
                        for s in dev.sessions.iter().filter(|s| s.nas == nas) {
                            if let Some(ip) = s.framed_ip {
                                self.ips.close(IpAddr::V4(ip), me, s.start, n.time);
                            }
                        }
                        dev.close_nas_sessions(nas, n.time, out);
                    }
                }
            }
            Event::Tick { .. } => {} // moved the clocks above
            Event::UpsertTenant(t) => {
                self.tenants.insert(t.id.clone(), t.clone());
                out.push(Output::TenantChanged { id: t.id.clone() });
            }
            Event::UpsertGroup(g) => {
                self.ensure_tenant(&g.tenant, out);
                let sym = self.syms.intern(&g.id);
                self.detect.set_disabled(sym, &g.disabled_detectors);
                self.groups.insert(g.id.clone(), g.clone());
                out.push(Output::GroupChanged { id: g.id.clone() });
            }
            Event::UpsertDevices(list) => {
                for d in list {
                    self.upsert_device(d, out);
                }
            }
            Event::SetLifecycle {
                time,
                imsi,
                state,
                actor,
                reason,
            } => {
                let part = &mut self.parts[Self::partition_of(*imsi)];
                if let Some(p) = part.get_mut(imsi).and_then(|d| d.provisioning.as_mut()) {
                    let from = p.lifecycle;
                    p.lifecycle = *state;
                    out.push(Output::LifecycleChanged {
                        imsi: *imsi,
                        time: *time,
                        from,
                        to: *state,
                        actor: actor.clone(),
                        reason: reason.clone(),
                    });
                }
            }
            Event::Flows(batch) => {
                self.stats.flow_batches += 1;
                self.apply_flow_batch(&batch.flows, out);
            }
            Event::UpsertRule(rule) => {
                if rule.validate().is_ok()
                    && (self.rules.len() < crate::rules::MAX_RULES
                        || self.rules.contains_key(&rule.id))
                {
                    self.rules.insert(rule.id.clone(), rule.clone());
                    out.push(Output::RuleChanged {
                        id: rule.id.clone(),
                    });
                }
            }
            Event::DeleteRule { id } => {
                if self.rules.remove(id).is_some() {
                    self.rule_state.retain(|(_, r), _| r != id);
                    out.push(Output::RuleChanged { id: id.clone() });
                }
            }
            Event::DeviceAction {
                time,
                imsi,
                action,
                actor,
                reason,
                expire_secs,
            } => {
                self.act(
                    *imsi,
                    *time,
                    *action,
                    Actor {
                        name: actor.clone(),
                        rule: None,
                        mode: RuleMode::Enforce,
                        step: 0,
                        may_step_down: true,
                    },
                    reason.clone(),
                    None,
                    *expire_secs,
                    out,
                );
            }
            Event::ActionResult(res) => {
                out.push(Output::ActionResult(Box::new(res.clone())));
            }
            Event::SetPolicy { group, policy } => {
                // The API validates; a policy that does not is ignored here
                // so that bad input cannot break the bounds.
                if policy.validate().is_ok() {
                    let sym = self.syms.intern(group);
                    self.policies.insert(
                        sym,
                        GroupPolicy {
                            group: group.as_str().into(),
                            policy: policy.clone(),
                        },
                    );
                    out.push(Output::PolicyChanged {
                        group: group.clone(),
                    });
                }
            }
        }
        // Deadlines fire on every event that moved the clock, ticks included,
        // so expiry happens in event time whether or not wall-clock ticks come.
        self.expire(out);
        if !self.rules.is_empty() {
            self.run_rules(out, outputs_from, signals);
        }
        self.expire_actions(out);
        if self.clock >= self.next_housekeeping {
            self.housekeeping();
        }
    }

    /// Feeds this event's findings and connectivity changes (and the usage
    /// and identity signals of its accounting) to the rules.
    fn run_rules(
        &mut self,
        out: &mut Vec<Output>,
        from: usize,
        mut signals: Vec<(Digits, i64, Signal)>,
    ) {
        for o in &out[from..] {
            match o {
                Output::Finding(f) => {
                    if let Some(imsi) = f.imsi() {
                        signals.push((
                            imsi,
                            f.time,
                            Signal::Finding {
                                id: f.id,
                                kind: f.kind,
                                severity: f.severity,
                                summary: f.evidence.summary.clone(),
                            },
                        ));
                    }
                }
                Output::CameOnline { imsi, time } => signals.push((
                    *imsi,
                    *time,
                    Signal::Connectivity {
                        event: ConnectivityEvent::CameOnline,
                        detail: "came online".into(),
                    },
                )),
                Output::WentOffline { imsi, time, reason } => signals.push((
                    *imsi,
                    *time,
                    Signal::Connectivity {
                        event: ConnectivityEvent::WentOffline,
                        detail: format!("went offline ({})", reason.as_str()),
                    },
                )),
                _ => {}
            }
        }
        for (imsi, time, signal) in signals {
            let Some(dev) = self.device(imsi) else {
                continue;
            };
            let prov = dev.provisioning.as_ref().map(|p| (p.tenant, p.group));
            let tenant = prov.map(|(t, _)| self.syms.resolve(t).to_string());
            let group = prov.map(|(_, g)| self.syms.resolve(g).to_string());
            let firing: Vec<Rule> = self
                .rules
                .values()
                .filter(|r| {
                    r.enabled
                        && signal.matches(&r.trigger)
                        && r.in_scope(tenant.as_deref(), group.as_deref(), imsi)
                })
                .cloned()
                .collect();
            for rule in firing {
                if let Signal::Usage { period_end, .. } = &signal {
                    // The condition holds until the period ends, whether or
                    // not the cooldown lets this firing act.
                    let sym = self.syms.intern(&rule.id);
                    self.exceeded
                        .insert((*period_end, imsi, Exceeded::Rule(sym)));
                }
                let key = (imsi, rule.id.clone());
                let st = self.rule_state.entry(key).or_default();
                if st.count > 0 && time - st.last_action < i64::from(rule.cooldown_secs) * 1000 {
                    continue;
                }
                if st.count == 0
                    || time - st.window_start > i64::from(rule.escalation_window_secs) * 1000
                {
                    st.count = 0;
                    st.window_start = time;
                }
                st.count += 1;
                st.last_action = time;
                let i = (st.count as usize - 1).min(rule.steps.len() - 1);
                let step = rule.steps[i].clone();
                self.act(
                    imsi,
                    time,
                    step.action,
                    Actor {
                        name: format!("rule:{}", rule.id),
                        rule: Some(rule.id.clone()),
                        mode: rule.mode,
                        step: i as u8,
                        may_step_down: false,
                    },
                    signal.reason(),
                    signal.finding(),
                    step.expire_secs,
                    out,
                );
            }
        }
    }

    /// Decides one action: changes the lifecycle when it is enforced, arms
    /// its expiry, and records it.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &mut self,
        imsi: Digits,
        time: i64,
        kind: ActionKind,
        actor: Actor,
        reason: String,
        finding: Option<u64>,
        expire_secs: Option<u32>,
        out: &mut Vec<Output>,
    ) {
        let part = &mut self.parts[Self::partition_of(imsi)];
        let Some(dev) = part.get_mut(&imsi) else {
            return;
        };
        let from = dev.provisioning.as_ref().map(|p| p.lifecycle);
        let current = from.unwrap_or(Lifecycle::Active);
        let target = kind.target(current);
        if let Some(t) = target {
            // A rule never steps a device down (a blocked device stays
            // blocked when a throttle rule fires); people may.
            if !actor.may_step_down && kind.reversal().is_some() && strength(t) < strength(current)
            {
                return;
            }
        }
        let enforce_mode = actor.mode == RuleMode::Enforce;
        let mut to = from;
        let mut changed = false;
        if enforce_mode {
            if let (Some(t), Some(p)) = (target, dev.provisioning.as_mut()) {
                if p.lifecycle != t {
                    p.lifecycle = t;
                    changed = true;
                    to = Some(t);
                }
            }
        }
        // An unprovisioned SIM has no lifecycle to keep, but the network can
        // still be told (a rule that disconnects unknown SIMs).
        let network_only =
            enforce_mode && from.is_none() && target.is_some_and(|t| t != Lifecycle::Active);
        let id = crate::finding::Finding::make_id(self.seq, self.finding_index);
        self.finding_index += 1;
        let expires = match (expire_secs, kind.reversal(), changed) {
            (Some(secs), Some(reversal), true) => {
                let at = time + i64::from(secs) * 1000;
                self.expiries.insert(
                    (at, imsi, id),
                    Expiry {
                        actor: actor.name.clone(),
                        rule: actor.rule.clone(),
                        reversal,
                        set: to.unwrap_or(Lifecycle::Active),
                    },
                );
                Some(at)
            }
            _ => None,
        };
        let prov = dev.provisioning.as_ref().map(|p| (p.tenant, p.group));
        if changed {
            out.push(Output::LifecycleChanged {
                imsi,
                time,
                from: current,
                to: to.unwrap_or(current),
                actor: actor.name.clone(),
                reason: reason.clone(),
            });
        }
        out.push(Output::Action(Box::new(Action {
            id,
            time,
            imsi,
            tenant: prov.map(|(t, _)| self.syms.resolve(t).to_string()),
            group: prov.map(|(_, g)| self.syms.resolve(g).to_string()),
            actor: actor.name,
            rule: actor.rule,
            kind,
            mode: actor.mode,
            reason,
            finding,
            from,
            to,
            expires,
            step: actor.step,
            enforce: changed || network_only,
        })));
    }

    /// Undoes expired actions whose state the device is still in.
    fn expire_actions(&mut self, out: &mut Vec<Output>) {
        let now = self.clock;
        while let Some((&(at, imsi, action), _)) = self.expiries.first_key_value() {
            if at > now {
                break;
            }
            let Some(e) = self.expiries.remove(&(at, imsi, action)) else {
                break;
            };
            if self.lifecycle(imsi) != Some(e.set) {
                continue; // someone changed it since: theirs stands
            }
            self.act(
                imsi,
                at,
                e.reversal,
                Actor {
                    name: format!("{} (expiry)", e.actor),
                    rule: e.rule,
                    mode: RuleMode::Enforce,
                    step: 0,
                    may_step_down: true,
                },
                format!("action {action} expired"),
                None,
                None,
                out,
            );
        }
    }

    /// Emits `UsageBackUnder` for every exceeded limit whose period has
    /// ended in accounting time (records and ticks; flows are left out, as
    /// for silence, because an exporter whose clock runs ahead must not end
    /// a period early).
    fn usage_back_under(&mut self, out: &mut Vec<Output>) {
        let now = self.detect.acct_clock;
        while let Some(&(end, imsi, which)) = self.exceeded.first() {
            if end > now {
                break;
            }
            self.exceeded.pop_first();
            let limit = match which {
                Exceeded::Rule(sym) => {
                    let id = self.syms.resolve(sym);
                    // A rule since given another kind of trigger: its
                    // alert now stands for something else. (A deleted
                    // rule's alert still clears: nothing else would.)
                    if self
                        .rules
                        .get(id)
                        .is_some_and(|r| !matches!(r.trigger, Trigger::Usage { .. }))
                    {
                        continue;
                    }
                    UsageLimit::Rule(id.to_string())
                }
                Exceeded::Finding(kind) => UsageLimit::Finding(kind),
            };
            out.push(Output::UsageBackUnder {
                imsi,
                limit,
                period_end: end,
                time: now,
            });
        }
    }

    /// Usage limits exceeded in a period that has not ended (in accounting
    /// time), as (end of the period, IMSI, limit), soonest first.
    pub fn exceeded_limits(&self) -> impl Iterator<Item = (i64, Digits, UsageLimit)> + '_ {
        self.exceeded.iter().map(|&(end, imsi, which)| {
            let limit = match which {
                Exceeded::Rule(sym) => UsageLimit::Rule(self.syms.resolve(sym).to_string()),
                Exceeded::Finding(kind) => UsageLimit::Finding(kind),
            };
            (end, imsi, limit)
        })
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.get(id)
    }

    /// Hourly (event time): forgets address tenures past the retention.
    fn housekeeping(&mut self) {
        let retention = self.options.flows.address_retention_ms;
        self.ips.cleanup(self.clock.saturating_sub(retention));
        self.next_housekeeping = (self.clock.div_euclid(HOUR_MS) + 1).saturating_mul(HOUR_MS);
    }

    fn device_by_ref(&self, r: DeviceRef) -> &Device {
        let (p, slot) = split_ref(r);
        &self.parts[p].slab[slot]
    }

    fn ensure_tenant(&mut self, id: &str, out: &mut Vec<Output>) {
        if !self.tenants.contains_key(id) {
            out.push(Output::TenantChanged { id: id.to_string() });
            self.tenants.insert(
                id.to_string(),
                Tenant {
                    id: id.to_string(),
                    name: id.to_string(),
                },
            );
        }
    }

    fn upsert_device(&mut self, d: &DeviceRecord, out: &mut Vec<Output>) {
        self.ensure_tenant(&d.tenant, out);
        if !self.groups.contains_key(&d.group) {
            out.push(Output::GroupChanged {
                id: d.group.clone(),
            });
            self.groups.insert(
                d.group.clone(),
                Group {
                    id: d.group.clone(),
                    tenant: d.tenant.clone(),
                    name: d.group.clone(),
                    profile: Default::default(),
                    disabled_detectors: Vec::new(),
                },
            );
        }
        let tenant = self.syms.intern(&d.tenant);
        let group = self.syms.intern(&d.group);
        let prov = Provisioning {
            iccid: d.iccid.as_deref().map(Into::into),
            msisdn: d.msisdn,
            bound_imei: d.bound_imei,
            tenant,
            group,
            lifecycle: d.lifecycle,
            label: d.label.as_deref().map(Into::into),
        };
        let part = &mut self.parts[Self::partition_of(d.imsi)];
        let slot = part.slot_or_insert(d.imsi, || Device::new(d.imsi));
        let dev = &mut part.slab[slot];
        let changed = dev.provisioning.as_ref() != Some(&prov);
        dev.provisioning = Some(prov);
        if changed {
            out.push(Output::DeviceChanged { imsi: d.imsi });
        }
    }

    /// Fires every deadline at or before the clock.
    fn expire(&mut self, out: &mut Vec<Output>) {
        let now = self.clock;
        for part in &mut self.parts {
            while let Some(&(deadline, imsi)) = part.timers.first() {
                if deadline > now {
                    break;
                }
                part.timers.pop_first();
                let Some(&slot) = part.index.get(&imsi) else {
                    part.armed.remove(&imsi);
                    continue;
                };
                let dev = &mut part.slab[slot as usize];
                if dev.deadline > now && !dev.sessions.is_empty() {
                    // The deadline moved since this timer was armed: re-arm.
                    part.timers.insert((dev.deadline, imsi));
                } else {
                    part.armed.remove(&imsi);
                    dev.expire(now, out);
                }
            }
        }
        let now = self.detect.acct_clock;
        if self.detect.silence.first().is_some_and(|&(t, _)| t <= now) {
            for (_, imsi) in self.detect.due_silence(now) {
                let part = &mut self.parts[Self::partition_of(imsi)];
                let Some(&slot) = part.index.get(&imsi) else {
                    continue;
                };
                let dev = &mut part.slab[slot as usize];
                let prov = dev.provisioning.as_ref().map(|p| (p.tenant, p.group));
                let names = Names {
                    tenant: prov.map(|(t, _)| self.syms.resolve(t)),
                    group: prov.map(|(_, g)| self.syms.resolve(g)),
                };
                let mut sink = Sink {
                    seq: self.seq,
                    index: &mut self.finding_index,
                    out,
                };
                self.detect.on_silence(
                    &self.options.detect,
                    &mut sink,
                    dev,
                    prov.map(|(_, g)| g),
                    names,
                    now,
                );
            }
        }
    }

    // ---- queries ----

    pub fn device(&self, imsi: Digits) -> Option<&Device> {
        self.parts[Self::partition_of(imsi)].get(&imsi)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values()
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    pub fn device_count(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Devices with IMSI > `after`, in IMSI order, that pass `filter`, at most `limit`.
    pub fn list_devices(
        &self,
        after: Option<Digits>,
        limit: usize,
        mut filter: impl FnMut(&Device) -> bool,
    ) -> Vec<&Device> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut iters: Vec<_> = self
            .parts
            .iter()
            .map(|p| {
                p.index
                    .range((lower, Bound::Unbounded))
                    .map(|(_, &i)| &p.slab[i as usize])
                    .peekable()
            })
            .collect();
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            // k-way merge over the partitions' ordered ranges.
            let mut min: Option<(usize, Digits)> = None;
            for (i, it) in iters.iter_mut().enumerate() {
                if let Some(d) = it.peek() {
                    if min.is_none_or(|(_, m)| d.imsi < m) {
                        min = Some((i, d.imsi));
                    }
                }
            }
            let Some((i, _)) = min else { break };
            if let Some(d) = iters[i].next() {
                if filter(d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Visits every device (for counts and metrics).
    pub fn for_each_device(&self, mut f: impl FnMut(&Device)) {
        for p in &self.parts {
            for d in p.devices() {
                f(d);
            }
        }
    }

    // ---- snapshots ----

    pub fn encode_snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut buf = Vec::with_capacity(64 + self.device_count() * 256);
        buf.extend_from_slice(SNAPSHOT_MAGIC);
        let buf = postcard::to_extend(self, buf)?;
        Ok(postcard::to_extend(&self.exceeded, buf)?)
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<Engine, EngineError> {
        let mut e: Engine = if let Some(rest) = bytes.strip_prefix(SNAPSHOT_MAGIC) {
            let (mut e, tail): (Engine, &[u8]) = postcard::take_from_bytes(rest)?;
            e.exceeded = postcard::from_bytes(tail)?;
            e
        } else {
            return match bytes.get(..3) {
                Some(b"SGS") => Err(EngineError::SnapshotVersion(bytes[3])),
                _ => Err(EngineError::NotASnapshot),
            };
        };
        e.syms.rebuild_index();
        if e.parts.len() != PARTITIONS {
            return Err(EngineError::Inconsistent("wrong number of partitions"));
        }
        for (p, part) in e.parts.iter_mut().enumerate() {
            for (slot, d) in part.slab.iter().enumerate() {
                if Self::partition_of(d.imsi) != p
                    || part.index.insert(d.imsi, slot as u32).is_some()
                {
                    return Err(EngineError::Inconsistent(
                        "device in the wrong partition or twice",
                    ));
                }
            }
        }
        let parts = &e.parts;
        if !e.ips.all_devices(|r| {
            let (p, slot) = split_ref(r);
            parts.get(p).is_some_and(|part| slot < part.slab.len())
        }) {
            return Err(EngineError::Inconsistent(
                "address held by an unknown device",
            ));
        }
        Ok(e)
    }

    /// The traffic profile of a device, if any flow was attributed to it.
    pub fn traffic(&self, imsi: Digits) -> Option<&TrafficProfile> {
        self.device(imsi).and_then(|d| d.traffic.as_deref())
    }

    /// The device's last attributed flows, newest first.
    pub fn recent_flows(&self, imsi: Digits) -> impl Iterator<Item = &RecentFlow> + '_ {
        self.traffic(imsi)
            .into_iter()
            .flat_map(|p| p.recent_flows())
    }

    /// The device's last policy violations, newest first.
    pub fn violations(&self, imsi: Digits) -> impl Iterator<Item = ViolationView<'_>> + '_ {
        self.traffic(imsi)
            .into_iter()
            .flat_map(|p| p.violations())
            .map(|v| ViolationView {
                time: v.time,
                flow: &v.flow,
                direction: v.direction,
                rule: v.rule.map(|r| r as usize),
                group: self.syms.resolve(v.group),
            })
    }

    /// The last flows no device could be found for, newest first.
    pub fn unattributed(&self) -> impl Iterator<Item = &FlowRecord> + '_ {
        self.unattributed.iter()
    }

    /// The device that held `ip` at `time`, with the attribution slack.
    pub fn ip_holder(&self, ip: IpAddr, time: i64) -> Option<Digits> {
        self.ips
            .holder_at(ip, time, self.options.flows.attribution_slack_ms)
            .map(|r| self.device_by_ref(r).imsi)
    }

    /// The remembered tenures of `ip`, oldest first.
    pub fn ip_history(&self, ip: IpAddr) -> Vec<IpTenure> {
        self.ips
            .history(ip)
            .iter()
            .map(|h| IpTenure {
                imsi: self.device_by_ref(h.device).imsi,
                from: h.from,
                to: h.to(),
            })
            .collect()
    }

    /// Addresses (and IPv6 /64 prefixes) in the address table.
    pub fn ip_table_len(&self) -> usize {
        self.ips.len()
    }

    /// The firewall policy of a group, if one was set.
    pub fn policy(&self, group: &str) -> Option<&FirewallPolicy> {
        let sym = self.syms.lookup(group)?;
        self.policies.get(&sym).map(|g| &g.policy)
    }

    /// Every group policy, by group id.
    pub fn policies(&self) -> Vec<(&str, &FirewallPolicy)> {
        let mut v: Vec<(&str, &FirewallPolicy)> = self
            .policies
            .values()
            .map(|g| (&*g.group, &g.policy))
            .collect();
        v.sort_unstable_by_key(|(g, _)| *g);
        v
    }

    /// Lifecycle of a provisioned device, for admission and enforcement.
    pub fn lifecycle(&self, imsi: Digits) -> Option<Lifecycle> {
        self.device(imsi).and_then(|d| d.lifecycle())
    }
}

/// A device's tenure of an address, as the address table remembers it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IpTenure {
    pub imsi: Digits,
    /// Session start, Unix ms (backdated by Acct-Session-Time when the Start was missed).
    pub from: i64,
    /// Session end; None while open. The tenure also ends where the next
    /// holder's begins.
    pub to: Option<i64>,
}

/// A policy violation as plain data, for the API.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ViolationView<'a> {
    pub time: i64,
    pub flow: &'a FlowRecord,
    pub direction: FlowDirection,
    /// Index of the deny rule; None when the default action denied.
    pub rule: Option<usize>,
    pub group: &'a str,
}

/// Finds the device a flow belongs to: the source if a device held it at the
/// flow's time ("up"), else the destination ("down"). The flow's start is
/// tried first, then its end (a long flow that began before the tenure). The
/// engine is causal: it knows only the accounting journaled before the flow,
/// so a flow journaled before the Start of its device is not attributed to it.
fn attribute(ips: &IpTable, f: &FlowRecord, slack: i64) -> Option<(DeviceRef, FlowDirection, i64)> {
    let t = f.time();
    let times = [t, f.end];
    let n = if f.end != t { 2 } else { 1 };
    for (ip, dir) in [(f.src, FlowDirection::Up), (f.dst, FlowDirection::Down)] {
        if let Some((dev, at)) = ips.holder_at_any(ip, &times[..n], slack) {
            return Some((dev, dir, at));
        }
    }
    None
}

/// Follows one accounting record into the address table. `before` and
/// `after` are the session's (framed address, start) around the record.
fn track_address(
    ips: &mut IpTable,
    me: DeviceRef,
    r: &AcctRecord,
    before: Option<(Option<Ipv4Addr>, i64)>,
    after: Option<(Option<Ipv4Addr>, i64)>,
) {
    // Acct-Session-Time says how long before this record the session began:
    // a missed Start does not lose the first part of the tenure.
    let began = r
        .session_time
        .map_or(r.time, |s| r.time - i64::from(s) * 1000);
    match (before, after) {
        (Some((Some(old), start)), Some((Some(ip), _))) if old != ip => {
            // The session's address changed: the new tenure starts now.
            ips.close(IpAddr::V4(old), me, start, r.time);
            ips.open(IpAddr::V4(ip), me, r.time, r.time);
        }
        (_, Some((Some(ip), start))) => {
            ips.open(IpAddr::V4(ip), me, start.min(began), r.time);
        }
        (Some((ip, start)), None) => {
            // This record stopped the session.
            if let Some(ip) = r.framed_ip.or(ip) {
                ips.close(IpAddr::V4(ip), me, start.min(began), r.time);
            }
        }
        (None, None) => {
            // A Stop for a session never seen open.
            if let Some(ip) = r.framed_ip {
                ips.close(IpAddr::V4(ip), me, began, r.time);
            }
        }
        (_, Some((None, _))) => {}
    }
}

/// Who acts, for `Engine::act`.
struct Actor {
    name: String,
    rule: Option<String>,
    mode: RuleMode,
    step: u8,
    /// People may lower a state; rules only raise it.
    may_step_down: bool,
}

/// Usage-threshold and identity signals of one accounting record.
fn rule_signals(
    dev: &Device,
    r: &AcctRecord,
    country_before: Option<&'static str>,
    imei_before: Option<Digits>,
    month_before: u64,
    day_before: u64,
    signals: &mut Vec<(Digits, i64, Signal)>,
) {
    let country_after = dev.network.and_then(|n| n.country());
    if let (Some(a), Some(b)) = (country_before, country_after) {
        if a != b {
            signals.push((
                dev.imsi,
                r.time,
                Signal::Connectivity {
                    event: ConnectivityEvent::CountryChanged,
                    detail: format!("country {a} → {b}"),
                },
            ));
        }
    }
    if let (Some(a), Some(b)) = (imei_before, dev.imeisv) {
        if a.prefix(14) != b.prefix(14) {
            signals.push((
                dev.imsi,
                r.time,
                Signal::Connectivity {
                    event: ConnectivityEvent::ImeiChanged,
                    detail: format!("IMEI {a} → {b}"),
                },
            ));
        }
    }
    let month_after = dev.usage.period_up + dev.usage.period_down;
    if month_after > month_before {
        signals.push((
            dev.imsi,
            r.time,
            Signal::Usage {
                period: UsagePeriod::Month,
                bytes: month_after,
                before: month_before,
                period_end: month_start(dev.usage.period.saturating_add(1)),
            },
        ));
    }
    if let Some(d) = dev.detect.as_deref() {
        // Only a record of the day the counter counts: a late record of an
        // earlier day added nothing to it, and must not be taken for a
        // crossing of the newer day's count.
        let day = r.time.div_euclid(DAY_MS);
        if i64::from(d.day) == day && d.day_up > day_before {
            signals.push((
                dev.imsi,
                r.time,
                Signal::Usage {
                    period: UsagePeriod::Day,
                    bytes: d.day_up,
                    before: day_before,
                    period_end: (day + 1) * DAY_MS,
                },
            ));
        }
    }
}
