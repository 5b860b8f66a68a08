//! Applying one journal event of flow records, in three phases:
//!
//! 1. **Attribution**: each flow's device, direction and time from the
//!    address table, which flows only read, so the batch is cut into one
//!    slice per worker.
//! 2. **Device work**, partition by partition: the traffic profile, the
//!    device half of the flow detectors and the group firewall policy. This
//!    is most of the cost (cache misses on 5-15 KB of state per device), and
//!    it reads and writes only the devices of its partitions, so large
//!    batches spread the partitions over `flow_workers` threads.
//! 3. **Group work and outputs** (calling thread, in journal order): the
//!    group half of the detectors (new destinations, beacons, learning),
//!    which reads and writes state shared by every device of a group, then
//!    the outputs, with finding ids, in the order a one-flow-at-a-time pass
//!    would give them.
//!
//! The result never depends on the number of threads: phase 2 shares
//! nothing between partitions, and phase 3 sees each flow in order. What the
//! split changes against applying a flow completely before the next (the
//! engine before `flow_batch`): the evidence of a new-destination finding
//! leaves out the flows its device sent later in the same batch, and comes
//! up short when more than [`crate::traffic::RECENT_FLOWS`] of them did; a
//! new-destination finding has a cooldown slot of its own (see
//! `DeviceDetect::allow_new_destination`).

use super::{
    attribute, split_ref, Engine, GroupPolicy, Interner, Partition, FLOW_ROUND, PARTITIONS,
};
use crate::detect::{Detection, FlowLocal, Names, Sink};
use crate::device::{Device, Sym};
use crate::event::FlowRecord;
use crate::ids::Digits;
use crate::iptable::{DeviceRef, IpTable};
use crate::policy::PolicyAction;
use crate::traffic::{FlowDirection, Violation};
use crate::{EngineOptions, Output};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Batches smaller than this are applied on the calling thread: starting
/// threads costs tens of microseconds, a flow about one.
pub(super) const PARALLEL_MIN_FLOWS: usize = 2048;

/// Attribution of one flow: its device, direction and attribution time.
pub(super) type Found = Option<(DeviceRef, FlowDirection, i64)>;

/// Where an output of phase 2 goes among its flow's outputs: the device
/// detectors' findings come before the group detectors' (phase 3), the
/// policy's outputs after.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seg {
    Detect,
    Policy,
}

struct Tagged {
    idx: u32,
    seg: Seg,
    out: Output,
}

/// An uplink flow of a device in a group, for the group half of detection.
struct Touch {
    idx: u32,
    dev: DeviceRef,
    imsi: Digits,
    tenant: Sym,
    group: Sym,
    time: i64,
    dir: FlowDirection,
    /// The profile's flow count just after this flow.
    flows_at: u64,
    local: FlowLocal,
}

/// What one worker did in phase 2. Its outputs and touches are in flow order.
#[derive(Default)]
struct DeviceWork {
    outputs: Vec<Tagged>,
    touches: Vec<Touch>,
    attributed: u64,
    violations: u64,
    findings: u64,
}

/// What every worker of phase 2 reads.
struct Shared<'a> {
    detect: &'a Detection,
    options: &'a EngineOptions,
    policies: &'a BTreeMap<Sym, GroupPolicy>,
    syms: &'a Interner,
    flows: &'a [FlowRecord],
    found: &'a [Found],
}

impl Engine {
    /// Applies one event's flows (see the module documentation).
    pub(super) fn apply_flow_batch(&mut self, flows: &[FlowRecord], out: &mut Vec<Output>) {
        let workers = if flows.len() >= PARALLEL_MIN_FLOWS {
            self.flow_workers.clamp(1, PARTITIONS)
        } else {
            1
        };

        // Phase 1, a slice of the batch per worker.
        let slack = self.options.flows.attribution_slack_ms;
        let mut found = std::mem::take(&mut self.found_scratch);
        found.clear();
        found.resize(flows.len(), None);
        let ips = &self.ips;
        let per = flows.len().div_ceil(workers).max(1);
        let slices: Vec<_> = flows.chunks(per).zip(found.chunks_mut(per)).collect();
        fork(slices, |(f, a)| attribute_into(ips, f, a, slack));

        // Phase 2.
        let shared = Shared {
            detect: &self.detect,
            options: &self.options,
            policies: &self.policies,
            syms: &self.syms,
            flows,
            found: &found,
        };
        let mut buckets: Vec<Vec<(usize, &mut Partition)>> =
            (0..workers).map(|_| Vec::new()).collect();
        for (p, part) in self.parts.iter_mut().enumerate() {
            buckets[p % workers].push((p, part));
        }
        let work = fork(buckets, |b| shared.run(b));

        // Phase 3.
        let mut findings = 0;
        let mut streams = Vec::with_capacity(work.len());
        for w in work {
            self.stats.flows_attributed += w.attributed;
            self.stats.policy_violations += w.violations;
            findings += w.findings;
            streams.push((
                w.outputs.into_iter().peekable(),
                w.touches.into_iter().peekable(),
            ));
        }
        self.detect.count_findings(findings);
        let mut sink = Sink {
            seq: self.seq,
            index: &mut self.finding_index,
            out,
        };
        for (i, (f, a)) in flows.iter().zip(&found).enumerate() {
            let Some((dev, _, _)) = *a else {
                self.stats.flows_unattributed += 1;
                self.unattributed.push(*f);
                sink.out.push(Output::UnattributedFlow {
                    time: f.time(),
                    flow: *f,
                });
                continue;
            };
            let i = i as u32;
            let (outputs, touches) = &mut streams[split_ref(dev).0 % workers];
            drain(outputs, i, Seg::Detect, &mut sink);
            if let Some(t) = touches.next_if(|t| t.idx == i) {
                let (p, slot) = split_ref(t.dev);
                let d: &mut Device = &mut self.parts[p].slab[slot];
                let syms = &self.syms;
                let names = || {
                    (
                        Some(syms.resolve(t.tenant).to_string()),
                        Some(syms.resolve(t.group).to_string()),
                    )
                };
                self.detect.on_flow_group(
                    &self.options.detect,
                    &mut sink,
                    t.imsi,
                    t.group,
                    &mut d.detect,
                    &d.traffic,
                    t.flows_at,
                    t.local,
                    names,
                    f,
                    t.dir,
                    t.time,
                );
            }
            drain(outputs, i, Seg::Policy, &mut sink);
        }
        found.clear();
        self.found_scratch = found;
    }
}

/// Runs `f` on each item, the first on this thread (so one item starts no
/// thread) and each other on a scoped thread of its own (or on this thread, if one cannot be started:
/// a batch is never lost to a thread limit); the results in item order. A
/// panic in a thread is raised again here.
fn fork<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let f = &f;
    // Each item waits in a slot for whichever thread runs it.
    let slots: Vec<std::sync::Mutex<Option<T>>> = items
        .into_iter()
        .map(|t| std::sync::Mutex::new(Some(t)))
        .collect();
    // `take` cannot panic while it holds a lock, so no lock is poisoned.
    let take = |i: usize| -> Option<T> {
        slots
            .get(i)?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..slots.len())
            .map(|i| {
                let take = &take;
                std::thread::Builder::new()
                    .name("sg-flows".into())
                    .spawn_scoped(s, move || take(i).map(f))
                    .ok()
            })
            .collect();
        let mut out = Vec::with_capacity(slots.len());
        out.extend(take(0).map(f));
        for (i, h) in handles.into_iter().enumerate() {
            let r = match h.map(|h| h.join()) {
                Some(Ok(r)) => r,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => take(i + 1).map(f),
            };
            out.extend(r);
        }
        out
    })
}

/// Phase 1 for a slice of the batch. Independent lookups back to back, a
/// round at a time: their cache misses overlap.
fn attribute_into(ips: &IpTable, flows: &[FlowRecord], found: &mut [Found], slack: i64) {
    for (round, out) in flows.chunks(FLOW_ROUND).zip(found.chunks_mut(FLOW_ROUND)) {
        for f in round {
            ips.touch(f.src);
            ips.touch(f.dst);
        }
        for (f, a) in round.iter().zip(out) {
            *a = attribute(ips, f, slack);
        }
    }
}

/// Where the detectors of phase 2 put flow `idx`'s findings: tagged with
/// `seg`, and counted.
fn tagger<'a>(
    outputs: &'a mut Vec<Tagged>,
    findings: &'a mut u64,
    idx: u32,
    seg: Seg,
) -> impl FnMut(crate::Finding) + 'a {
    move |f| {
        *findings += 1;
        outputs.push(Tagged {
            idx,
            seg,
            out: Output::Finding(Box::new(f)),
        });
    }
}

/// Moves flow `idx`'s outputs of `seg` to the sink (findings get their ids).
fn drain(
    outputs: &mut std::iter::Peekable<std::vec::IntoIter<Tagged>>,
    idx: u32,
    seg: Seg,
    sink: &mut Sink<'_>,
) {
    while let Some(t) = outputs.next_if(|t| t.idx == idx && t.seg == seg) {
        match t.out {
            Output::Finding(f) => sink.emit(*f),
            o => sink.out.push(o),
        }
    }
}

impl Shared<'_> {
    /// Phase 2 for the flows of `mine` (partition index, partition), in
    /// rounds of `FLOW_ROUND` whose cache misses overlap: prefetch every
    /// device, then the fixed parts of each profile, then the counter row
    /// and ring slot each flow updates, then apply.
    fn run(&self, mut mine: Vec<(usize, &mut Partition)>) -> DeviceWork {
        let mut at = [usize::MAX; PARTITIONS];
        for (k, (p, _)) in mine.iter().enumerate() {
            at[*p] = k;
        }
        let mut work = DeviceWork::default();
        for (r, round) in self.found.chunks(FLOW_ROUND).enumerate() {
            let base = r * FLOW_ROUND;
            for &(dev, _, _) in round.iter().flatten() {
                let (p, slot) = split_ref(dev);
                if at[p] != usize::MAX {
                    mine[at[p]].1.slab[slot].prefetch();
                }
            }
            for &(dev, _, time) in round.iter().flatten() {
                let (p, slot) = split_ref(dev);
                if at[p] == usize::MAX {
                    continue;
                }
                let d = &mine[at[p]].1.slab[slot];
                if let Some(t) = d.traffic.as_deref() {
                    t.prefetch(time);
                }
                if let Some(st) = d.detect.as_deref() {
                    crate::prefetch::prefetch(std::ptr::addr_of!(st.burst));
                }
            }
            for (k, a) in round.iter().enumerate() {
                let Some((dev, dir, _)) = *a else { continue };
                let (p, slot) = split_ref(dev);
                if at[p] == usize::MAX {
                    continue;
                }
                let d = &mine[at[p]].1.slab[slot];
                if let Some(t) = d.traffic.as_deref() {
                    t.prefetch_slots(&self.flows[base + k], dir);
                }
                if let Some(b) = d.detect.as_deref().and_then(|st| st.burst.as_deref()) {
                    crate::prefetch::prefetch_all(b);
                }
            }
            for (k, a) in round.iter().enumerate() {
                let Some((dev, dir, time)) = *a else { continue };
                let (p, slot) = split_ref(dev);
                if at[p] == usize::MAX {
                    continue;
                }
                let i = base + k;
                let d = &mut mine[at[p]].1.slab[slot];
                self.apply(&mut work, d, i as u32, dev, &self.flows[i], dir, time);
            }
        }
        work
    }

    /// Phase 2 for one attributed flow.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        work: &mut DeviceWork,
        dev: &mut Device,
        idx: u32,
        dref: DeviceRef,
        f: &FlowRecord,
        direction: FlowDirection,
        time: i64,
    ) {
        work.attributed += 1;
        let profile = dev.traffic.get_or_insert_with(Default::default);
        profile.observe(f, direction, time);
        let prov = dev.provisioning.as_ref().map(|p| (p.tenant, p.group));
        let st = dev.detect.get_or_insert_with(Default::default);
        let syms = self.syms;
        let names = || {
            (
                prov.map(|(t, _)| syms.resolve(t).to_string()),
                prov.map(|(_, g)| syms.resolve(g).to_string()),
            )
        };
        let local = self.detect.on_flow_device(
            &self.options.detect,
            &mut tagger(&mut work.outputs, &mut work.findings, idx, Seg::Detect),
            dev.imsi,
            st,
            profile,
            prov.map(|(_, g)| g),
            names,
            f,
            direction,
            time,
        );
        let Some((tenant, group)) = prov else {
            return; // unprovisioned: no group, no policy
        };
        if let Some(local) = local {
            work.touches.push(Touch {
                idx,
                dev: dref,
                imsi: dev.imsi,
                tenant,
                group,
                time,
                dir: direction,
                flows_at: profile.flows(),
                local,
            });
        }
        let Some(gp) = self.policies.get(&group) else {
            return;
        };
        let (remote, port) = direction.remote(f);
        let verdict = gp.policy.evaluate(remote, port, f.proto, direction);
        if verdict.action != PolicyAction::Deny {
            return;
        }
        work.violations += 1;
        profile.record_violation(Violation {
            time,
            flow: *f,
            direction,
            rule: verdict.rule.map(|r| r as u32),
            group,
        });
        work.outputs.push(Tagged {
            idx,
            seg: Seg::Policy,
            out: Output::PolicyViolation {
                imsi: dev.imsi,
                time,
                flow: *f,
                direction,
                rule: verdict.rule,
                group: Arc::clone(&gp.group),
            },
        });
        let names = Names {
            tenant: Some(self.syms.resolve(tenant)),
            group: Some(&gp.group),
        };
        self.detect.on_violation(
            &self.options.detect,
            &mut tagger(&mut work.outputs, &mut work.findings, idx, Seg::Policy),
            dev.imsi,
            st,
            group,
            names,
            f,
            direction,
            verdict.rule,
            time,
        );
    }
}
