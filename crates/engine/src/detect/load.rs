//! Overload: attaches per cell, serving network and APN per window, against
//! each key's own baseline. Bounded: at most [`MAX_KEYS`] keys are tracked;
//! past that, new keys are not (the busiest are already known).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_KEYS: usize = 262_144;

/// What a load key is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum LoadKind {
    Cell,
    Network,
    Apn,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct LoadStat {
    /// Window start, Unix ms.
    pub window: i64,
    pub count: u32,
    /// Mean attaches per active window, in 1/16ths (exponentially weighted, 1/8 per window).
    pub baseline_x16: u32,
    /// Completed active windows seen.
    pub windows: u32,
    /// Whether this window was already reported.
    pub raised: bool,
}

/// Result of counting one attach.
pub struct Overloaded {
    pub count: u32,
    /// Baseline attaches per window (None: no history yet).
    pub baseline: Option<f64>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Load {
    keys: BTreeMap<(LoadKind, u64), LoadStat>,
}

impl Load {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counts an attach at `time`; returns Some when this attach makes the
    /// key overloaded for the first time in its window.
    #[allow(clippy::too_many_arguments)]
    pub fn attach(
        &mut self,
        kind: LoadKind,
        key: u64,
        time: i64,
        window_ms: i64,
        min: u32,
        factor: u32,
        judge: bool,
    ) -> Option<Overloaded> {
        let len = self.keys.len();
        let s = match self.keys.get_mut(&(kind, key)) {
            Some(s) => s,
            None if len < MAX_KEYS => self.keys.entry((kind, key)).or_default(),
            None => return None,
        };
        let w = time.div_euclid(window_ms) * window_ms;
        if w > s.window {
            if s.count > 0 && s.window != 0 {
                // Fold the finished window into the baseline.
                let x16 = s.count.saturating_mul(16);
                s.baseline_x16 = if s.windows == 0 {
                    x16
                } else {
                    (s.baseline_x16 / 8) * 7 + x16 / 8
                };
                s.windows += 1;
            }
            s.window = w;
            s.count = 0;
            s.raised = false;
        }
        s.count += 1;
        if !judge || s.raised || s.count < min {
            return None;
        }
        let baseline = (s.windows >= 3).then(|| f64::from(s.baseline_x16) / 16.0);
        let over = match baseline {
            Some(b) => f64::from(s.count) >= f64::from(factor) * b.max(1.0),
            // A key with no history yet that suddenly carries this many
            // attaches: compare against the minimum alone, doubled.
            None => s.count >= min.saturating_mul(2),
        };
        if !over {
            return None;
        }
        s.raised = true;
        Some(Overloaded {
            count: s.count,
            baseline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_fires_once_per_window_against_the_baseline() {
        let mut l = Load::default();
        let w = 600_000;
        // 10 windows of 20 attaches: the baseline.
        for i in 0..10 {
            for _ in 0..20 {
                assert!(l
                    .attach(LoadKind::Cell, 7, i * w + 1, w, 50, 5, true)
                    .is_none());
            }
        }
        // 99 attaches in one window: not 5x of 20.
        let mut fired = 0;
        for _ in 0..99 {
            fired += usize::from(
                l.attach(LoadKind::Cell, 7, 10 * w + 1, w, 50, 5, true)
                    .is_some(),
            );
        }
        assert_eq!(fired, 0);
        // 300 in the next: fires once, at 5x the baseline (which the 99 raised to ~30).
        let mut at = Vec::new();
        for i in 0..300 {
            if let Some(o) = l.attach(LoadKind::Cell, 7, 11 * w + 1, w, 50, 5, true) {
                at.push((i, o.count, o.baseline));
            }
        }
        assert_eq!(at.len(), 1, "{at:?}");
        assert!(at[0].1 >= 140 && at[0].1 <= 160, "{at:?}");
        // Another key is independent.
        assert!(l
            .attach(LoadKind::Network, 7, 11 * w + 1, w, 50, 5, true)
            .is_none());
    }
}
