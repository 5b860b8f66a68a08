//! The PGW's UE address pool.
//!
//! Lowest-free allocation with a short hold-down after release, like common PGW
//! pools: addresses come back to other devices soon, which is exactly what makes
//! IP-to-IMSI attribution time-dependent for the server.

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;

/// Released addresses stay unused this long before they can be handed out again.
const HOLD_MS: u64 = 5 * 60 * 1_000;

pub(crate) struct IpPool {
    base: u32,
    size: u32,
    next_fresh: u32,
    free: BTreeSet<u32>,
    held: VecDeque<(u64, u32)>,
}

impl IpPool {
    pub fn new(base: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.clamp(8, 30);
        let mask = u32::MAX << (32 - u32::from(prefix));
        IpPool {
            base: u32::from(base) & mask,
            size: !mask + 1,
            next_fresh: 0,
            free: BTreeSet::new(),
            held: VecDeque::new(),
        }
    }

    fn usable(&self, off: u32) -> bool {
        // Skip .0 and .255 of every /24: some CPE and firewalls still mishandle them.
        let last = (self.base.wrapping_add(off)) & 0xff;
        off < self.size && last != 0 && last != 255
    }

    pub fn allocate(&mut self, now_ms: u64) -> Option<Ipv4Addr> {
        while let Some(&(at, off)) = self.held.front() {
            if at + HOLD_MS > now_ms {
                break;
            }
            self.held.pop_front();
            self.free.insert(off);
        }
        while self.next_fresh < self.size && !self.usable(self.next_fresh) {
            self.next_fresh += 1;
        }
        let fresh = (self.next_fresh < self.size).then_some(self.next_fresh);
        let off = match (self.free.first().copied(), fresh) {
            (Some(f), Some(n)) if f < n => self.free.pop_first(),
            (_, Some(n)) => {
                self.next_fresh = n + 1;
                Some(n)
            }
            (Some(_), None) => self.free.pop_first(),
            // Exhausted: reuse the longest-held address rather than leave a session
            // without one; a real pool would reject the session instead.
            (None, None) => self.held.pop_front().map(|(_, o)| o),
        }?;
        Some(Ipv4Addr::from(self.base.wrapping_add(off)))
    }

    pub fn release(&mut self, addr: Ipv4Addr, now_ms: u64) {
        let off = u32::from(addr).wrapping_sub(self.base);
        if off < self.size {
            self.held.push_back((now_ms, off));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_with_hold_down() {
        let mut p = IpPool::new(Ipv4Addr::new(10, 45, 0, 0), 16);
        let a = p.allocate(0).unwrap();
        let b = p.allocate(0).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 45, 0, 1));
        assert_eq!(b, Ipv4Addr::new(10, 45, 0, 2));
        p.release(a, 1_000);
        assert_eq!(p.allocate(2_000).unwrap(), Ipv4Addr::new(10, 45, 0, 3));
        assert_eq!(p.allocate(1_000 + HOLD_MS).unwrap(), a);
    }

    #[test]
    fn skips_zero_and_broadcast_octets_and_survives_exhaustion() {
        let mut p = IpPool::new(Ipv4Addr::new(10, 45, 0, 0), 24);
        let mut got = Vec::new();
        for _ in 0..254 {
            got.push(p.allocate(0).unwrap());
        }
        assert!(got
            .iter()
            .all(|a| a.octets()[3] != 0 && a.octets()[3] != 255));
        assert!(p.allocate(0).is_none());
        p.release(got[5], 0);
        assert_eq!(p.allocate(1).unwrap(), got[5]);
    }
}
