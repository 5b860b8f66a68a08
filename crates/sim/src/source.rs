//! Where requests come from: the discrete-event fleet scheduler or the load generator.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::device::{Device, Pgw, Record};
use crate::fleet::{fleet, rng, STREAM_PGW};
use crate::pool::IpPool;
use crate::{Mode, SimConfig};
use rand::Rng;

pub(crate) enum Next {
    /// An event is due now.
    Due,
    /// The next event is at this simulated time (ms).
    At(u64),
    /// Nothing more to send.
    Done,
}

enum Kind {
    /// Min-heap of (sim time ms, device index): the index breaks ties so the order,
    /// and with it the shared pool and charging ids, is fixed for a seed.
    Fleet {
        heap: BinaryHeap<Reverse<(u64, u32)>>,
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
}

impl Generator {
    pub fn new(cfg: &SimConfig, start_ms: u64) -> Generator {
        let load = matches!(cfg.mode, Mode::Load { .. });
        let sims = fleet(cfg.seed, cfg.devices, &cfg.mix, cfg.unprovisioned_share);
        // Seeded by the start too: a fleet resumed later gets other charging ids, as a
        // restarted PGW would, while its devices keep their identity and habits.
        let mut base = rng(cfg.seed ^ start_ms.rotate_left(23), STREAM_PGW);
        let mut pgw = Pgw {
            pool: IpPool::new(cfg.ip_pool_base, cfg.ip_pool_prefix),
            // A PGW's charging ids run on from wherever it was when the simulation joined.
            next_charging_id: base.gen_range(1..0x4000_0000),
        };
        let devices: Vec<Device> = sims
            .iter()
            .map(|d| Device::new(d, cfg.seed, start_ms, &mut pgw, load))
            .collect();
        let kind = if load {
            Kind::Load { cursor: 0 }
        } else {
            let heap = devices
                .iter()
                .map(|d| Reverse((d.next_ms, d.index)))
                .collect();
            let end_ms = cfg
                .sim_duration
                .map(|d| start_ms.saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64));
            Kind::Fleet { heap, end_ms }
        };
        Generator { devices, pgw, kind }
    }

    pub fn peek(&self, sim_now_ms: u64) -> Next {
        match &self.kind {
            Kind::Fleet { heap, end_ms } => match heap.peek() {
                None => Next::Done,
                Some(Reverse((t, _))) if end_ms.is_some_and(|e| *t >= e) => Next::Done,
                Some(Reverse((t, _))) if *t <= sim_now_ms => Next::Due,
                Some(Reverse((t, _))) => Next::At(*t),
            },
            Kind::Load { .. } if self.devices.is_empty() => Next::Done,
            Kind::Load { .. } => Next::Due,
        }
    }

    /// Fires the next event regardless of the clock; `sim_now_ms` stamps load-mode records.
    pub fn pop(&mut self, sim_now_ms: u64) -> Option<(usize, Record)> {
        match &mut self.kind {
            Kind::Fleet { heap, .. } => {
                let Reverse((_, idx)) = heap.pop()?;
                let dev = self.devices.get_mut(idx as usize)?;
                let rec = dev.fire(&mut self.pgw);
                heap.push(Reverse((dev.next_ms, idx)));
                Some((idx as usize, rec))
            }
            Kind::Load { cursor } => {
                let n = self.devices.len();
                if n == 0 {
                    return None;
                }
                let i = *cursor % n;
                *cursor = (i + 1) % n;
                let rec = self.devices[i].load_interim(sim_now_ms);
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
