//! The engine: a pure, deterministic fold of journal events into state.
//!
//! `apply(seq, event)` is the only way state changes. The same events in the
//! same order always give the same state and the same outputs, which is what
//! makes snapshot + replay recovery, backtests and later scale-out possible.

use crate::device::{Device, LivenessOptions, Provisioning, RecordSyms, Sym};
use crate::event::Event;
use crate::ids::Digits;
use crate::inventory::{DeviceRecord, Group, Lifecycle, Tenant};
use crate::Output;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Partitions by IMSI. Fixed, because it is part of the snapshot; it lets the
/// engine later run one partition per core.
pub const PARTITIONS: usize = 16;

/// Most distinct interned strings (APNs, NAS names, ids). Past it, new values
/// share one "other" symbol, so a misbehaving NAS cannot grow memory forever.
pub const MAX_SYMBOLS: usize = 1 << 20;

/// Engine-wide options; fixed for the life of a journal (stored in snapshots).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct EngineOptions {
    pub liveness: LivenessOptions,
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
    /// Ordered so that API pagination by IMSI is a range scan.
    pub devices: BTreeMap<Digits, Device>,
    /// At most one pending timer per device with an open session: when one
    /// fires early (the deadline moved), it is re-armed at the new deadline.
    /// Ordered (deadline, IMSI) pairs; ordered, not a heap, so that a
    /// snapshot of the same state always encodes to the same bytes.
    timers: BTreeSet<(i64, Digits)>,
    /// Devices that currently have a timer in `timers`.
    armed: BTreeSet<Digits>,
}

/// Counters of what the engine has seen, for metrics and the API.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub events: u64,
    pub accounting_records: u64,
    /// IMSIs seen in accounting that are not in the inventory.
    pub unprovisioned_seen: u64,
    pub nas_resets: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("snapshot is not a simguard engine snapshot")]
    NotASnapshot,
    #[error("snapshot format version {0} is not supported by this build")]
    SnapshotVersion(u8),
    #[error("snapshot is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
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
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"SGS1";

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
        }
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
        self.stats.events += 1;
        if let Some(t) = event.time() {
            self.clock = self.clock.max(t);
        }
        match event {
            Event::Accounting(r) => {
                self.stats.accounting_records += 1;
                let nas = self.syms.intern(&r.nas);
                let apn = r.apn.as_deref().map(|a| self.syms.intern(a));
                let opts = self.options.liveness;
                let part = &mut self.parts[Self::partition_of(r.imsi)];
                let dev = part.devices.entry(r.imsi).or_insert_with(|| {
                    self.stats.unprovisioned_seen += 1;
                    out.push(Output::Unprovisioned {
                        imsi: r.imsi,
                        time: r.time,
                    });
                    Device::new(r.imsi)
                });
                let needs_timer = dev.apply_accounting(r, RecordSyms { nas, apn }, &opts, out);
                if needs_timer && !part.armed.contains(&r.imsi) {
                    part.armed.insert(r.imsi);
                    part.timers.insert((dev.deadline, r.imsi));
                }
            }
            Event::NasReset(n) => {
                self.stats.nas_resets += 1;
                let nas = self.syms.intern(&n.nas);
                for part in &mut self.parts {
                    for dev in part.devices.values_mut() {
                        dev.close_nas_sessions(nas, n.time, out);
                    }
                }
            }
            Event::Tick { .. } => {}
            Event::UpsertTenant(t) => {
                self.tenants.insert(t.id.clone(), t.clone());
                out.push(Output::TenantChanged { id: t.id.clone() });
            }
            Event::UpsertGroup(g) => {
                self.ensure_tenant(&g.tenant, out);
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
                if let Some(p) = part
                    .devices
                    .get_mut(imsi)
                    .and_then(|d| d.provisioning.as_mut())
                {
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
        }
        // Deadlines fire on every event that moved the clock, ticks included,
        // so expiry happens in event time whether or not wall-clock ticks come.
        self.expire(out);
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
        let dev = part
            .devices
            .entry(d.imsi)
            .or_insert_with(|| Device::new(d.imsi));
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
                let Some(dev) = part.devices.get_mut(&imsi) else {
                    part.armed.remove(&imsi);
                    continue;
                };
                if dev.deadline > now && !dev.sessions.is_empty() {
                    // The deadline moved since this timer was armed: re-arm.
                    part.timers.insert((dev.deadline, imsi));
                } else {
                    part.armed.remove(&imsi);
                    dev.expire(now, out);
                }
            }
        }
    }

    // ---- queries ----

    pub fn device(&self, imsi: Digits) -> Option<&Device> {
        self.parts[Self::partition_of(imsi)].devices.get(&imsi)
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
        self.parts.iter().map(|p| p.devices.len()).sum()
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
                p.devices
                    .range((lower, Bound::Unbounded))
                    .map(|(_, d)| d)
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
            for d in p.devices.values() {
                f(d);
            }
        }
    }

    // ---- snapshots ----

    pub fn encode_snapshot(&self) -> Result<Vec<u8>, EngineError> {
        let mut buf = Vec::with_capacity(64 + self.device_count() * 256);
        buf.extend_from_slice(SNAPSHOT_MAGIC);
        Ok(postcard::to_extend(self, buf)?)
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<Engine, EngineError> {
        let Some(rest) = bytes.strip_prefix(SNAPSHOT_MAGIC) else {
            return match bytes.get(..3) {
                Some(b"SGS") => Err(EngineError::SnapshotVersion(bytes[3])),
                _ => Err(EngineError::NotASnapshot),
            };
        };
        let mut e: Engine = postcard::from_bytes(rest)?;
        e.syms.rebuild_index();
        Ok(e)
    }

    /// Lifecycle of a provisioned device, for admission and enforcement.
    pub fn lifecycle(&self, imsi: Digits) -> Option<Lifecycle> {
        self.device(imsi).and_then(|d| d.lifecycle())
    }
}
