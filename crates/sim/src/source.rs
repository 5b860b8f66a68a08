//! Where requests come from: the discrete-event fleet scheduler or the load generator.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::attack::{Overlay, Sched};
use crate::device::{Device, Pgw, Record};
use crate::fleet::{fleet, rng, SimDevice, STREAM_PGW};
use crate::pool::IpPool;
use crate::scenario::Scenario;
use crate::{Mode, SimConfig, SimError};
use rand::Rng;

pub(crate) enum Next {
    /// An event is due now.
    Due,
    /// The next event is at this simulated time (ms).
    At(u64),
    /// Nothing more to send.
    Done,
}

/// Heap keys from here on are overlay events (key - OVERLAY_KEY is the instance);
/// below it, device indices. Devices sort before overlay events of the same
/// millisecond, and among themselves by index as they always have.
const OVERLAY_KEY: u64 = 1 << 40;
/// `queued` value of a device with no live heap entry.
const NOT_QUEUED: u64 = u64::MAX;

enum Kind {
    /// Min-heap of (sim time ms, key): the key breaks ties so the order, and with it
    /// the shared pool and charging ids, is fixed for a seed.
    Fleet {
        heap: BinaryHeap<Reverse<(u64, u64)>>,
        end_ms: Option<u64>,
    },
    Load {
        cursor: usize,
    },
}

pub(crate) struct Generator {
    pub devices: Vec<Device>,
    pub pgw: Pgw,
    kind: Kind,
    /// The scenario's attacks and benign variety, if any.
    pub overlay: Option<Box<Overlay>>,
    /// Per device: the time of its one live heap entry; other entries are stale
    /// (left behind when the overlay rescheduled the device) and skipped.
    queued: Vec<u64>,
    sched: Vec<Sched>,
}

impl Generator {
    pub fn new(cfg: &SimConfig, start_ms: u64) -> Generator {
        let sims = fleet(cfg.seed, cfg.devices, &cfg.mix, cfg.unprovisioned_share);
        // A plain run has no overlay, so building it cannot fail.
        Generator::build(cfg, start_ms, &sims, None)
    }

    /// A fleet run with a scenario's devices, attacks and benign variety.
    pub fn with_scenario(
        cfg: &SimConfig,
        start_ms: u64,
        scenario: &Scenario,
    ) -> Result<Generator, SimError> {
        let sims = scenario.devices();
        let overlay = Overlay::new(scenario, &sims)?;
        let mut g = Generator::build(cfg, start_ms, &sims, Some(Box::new(overlay)));
        for d in g.devices.iter_mut() {
            d.tweaks.local_time = scenario.benign.local_time_schedules;
            d.tweaks.interim_jitter_ms = u64::from(scenario.benign.interim_jitter_secs) * 1_000;
        }
        Ok(g)
    }

    fn build(
        cfg: &SimConfig,
        start_ms: u64,
        sims: &[SimDevice],
        overlay: Option<Box<Overlay>>,
    ) -> Generator {
        let load = matches!(cfg.mode, Mode::Load { .. });
        // Seeded by the start too: a fleet resumed later gets other charging ids, as a
        // restarted PGW would, while its devices keep their identity and habits.
        let mut base = rng(cfg.seed ^ start_ms.rotate_left(23), STREAM_PGW);
        let mut pgw = Pgw {
            pool: IpPool::new(cfg.ip_pool_base, cfg.ip_pool_prefix),
            // A PGW's charging ids run on from wherever it was when the simulation joined.
            next_charging_id: base.gen_range(1..0x4000_0000),
        };
        let regular = overlay
            .as_ref()
            .map_or(sims.len(), |o| o.base_devices() as usize);
        let devices: Vec<Device> = sims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if i < regular {
                    Device::new(d, cfg.seed, start_ms, &mut pgw, load)
                } else {
                    Device::dormant(d, cfg.seed, start_ms, &mut pgw)
                }
            })
            .collect();
        let mut queued = vec![NOT_QUEUED; devices.len()];
        let kind = if load {
            Kind::Load { cursor: 0 }
        } else {
            let mut heap: BinaryHeap<Reverse<(u64, u64)>> = devices
                .iter()
                .filter(|d| d.next_ms != u64::MAX)
                .map(|d| Reverse((d.next_ms, u64::from(d.index))))
                .collect();
            for d in &devices {
                if d.next_ms != u64::MAX {
                    queued[d.index as usize] = d.next_ms;
                }
            }
            if let Some(o) = &overlay {
                for (id, t) in o.initial_events() {
                    heap.push(Reverse((t, OVERLAY_KEY + id as u64)));
                }
            }
            let end_ms = cfg
                .sim_duration
                .map(|d| start_ms.saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64));
            Kind::Fleet { heap, end_ms }
        };
        Generator {
            devices,
            pgw,
            kind,
            overlay,
            queued,
            sched: Vec::new(),
        }
    }

    /// Runs overlay events due by `sim_now_ms` and drops stale entries, then tells what
    /// comes next. Flows the overlay emitted wait in `overlay.out`.
    pub fn peek(&mut self, sim_now_ms: u64) -> Next {
        let Generator {
            devices,
            kind,
            overlay,
            queued,
            sched,
            ..
        } = self;
        match kind {
            Kind::Fleet { heap, end_ms } => loop {
                let Some(&Reverse((t, key))) = heap.peek() else {
                    return Next::Done;
                };
                if end_ms.is_some_and(|e| t >= e) {
                    return Next::Done;
                }
                if key >= OVERLAY_KEY {
                    if t > sim_now_ms {
                        return Next::At(t);
                    }
                    heap.pop();
                    if let Some(o) = overlay.as_mut() {
                        o.on_event((key - OVERLAY_KEY) as usize, t, devices, sched);
                        apply(heap, queued, devices, sched);
                    }
                    continue;
                }
                if queued.get(key as usize) != Some(&t) {
                    heap.pop();
                    continue;
                }
                return if t <= sim_now_ms {
                    Next::Due
                } else {
                    Next::At(t)
                };
            },
            Kind::Load { .. } if devices.is_empty() => Next::Done,
            Kind::Load { .. } => Next::Due,
        }
    }

    /// Fires the next device event regardless of the clock (running any overlay event
    /// before it); `sim_now_ms` stamps load-mode records.
    pub fn pop(&mut self, sim_now_ms: u64) -> Option<(usize, Record)> {
        let Generator {
            devices,
            pgw,
            kind,
            overlay,
            queued,
            sched,
        } = self;
        match kind {
            Kind::Fleet { heap, .. } => loop {
                let Reverse((t, key)) = heap.pop()?;
                if key >= OVERLAY_KEY {
                    if let Some(o) = overlay.as_mut() {
                        o.on_event((key - OVERLAY_KEY) as usize, t, devices, sched);
                        apply(heap, queued, devices, sched);
                    }
                    continue;
                }
                let idx = key as usize;
                if queued.get(idx) != Some(&t) {
                    continue;
                }
                queued[idx] = NOT_QUEUED;
                let dev = devices.get_mut(idx)?;
                let rec = dev.fire(pgw);
                if let Some(o) = overlay.as_mut() {
                    o.after_fire(idx, dev, &rec, sched);
                }
                sched.push(Sched::Device(idx as u32));
                apply(heap, queued, devices, sched);
                return Some((idx, rec));
            },
            Kind::Load { cursor } => {
                let n = devices.len();
                if n == 0 {
                    return None;
                }
                let i = *cursor % n;
                *cursor = (i + 1) % n;
                let rec = devices[i].load_interim(sim_now_ms);
                Some((i, rec))
            }
        }
    }

    /// Simulated time of the next pending event, if any.
    pub fn next_time(&self) -> Option<u64> {
        match &self.kind {
            Kind::Fleet { heap, .. } => heap.peek().map(|Reverse((t, _))| *t),
            Kind::Load { .. } => None,
        }
    }
}

/// Queues what the overlay (or a fired event) changed.
fn apply(
    heap: &mut BinaryHeap<Reverse<(u64, u64)>>,
    queued: &mut [u64],
    devices: &[Device],
    sched: &mut Vec<Sched>,
) {
    for s in sched.drain(..) {
        match s {
            Sched::Device(i) => {
                let Some(d) = devices.get(i as usize) else {
                    continue;
                };
                let q = &mut queued[i as usize];
                if d.next_ms == u64::MAX {
                    *q = NOT_QUEUED;
                } else if *q != d.next_ms {
                    *q = d.next_ms;
                    heap.push(Reverse((d.next_ms, u64::from(i))));
                }
            }
            Sched::Event(id, t) => heap.push(Reverse((t, OVERLAY_KEY + id as u64))),
        }
    }
}
