//! Who held an IP address when: the time-aware address → IMSI table that
//! attributes flow records to devices.
//!
//! Addresses are reused: the pool hands an address to another device after a
//! session stops. So the table keeps, per address, a short history of
//! holders `(device, from, to)` built from accounting (framed address with the
//! session's start and stop), and a flow is attributed by its time.
//!
//! Rules:
//! - Holders of one address are ordered by `from`. A holder's interval ends
//!   at its `to` (None while the session is open) or where the next holder
//!   begins, whichever is first: the pool gave the address to someone else,
//!   so intervals never overlap, whatever order the records arrived in.
//! - A time inside an interval belongs to that holder. A time in no interval
//!   goes to the nearest interval within the slack (clock skew between the
//!   exporter and the NAS), never into another holder's interval; ties go to
//!   the later holder.
//! - IPv6 is keyed by the /64 prefix (a PDN connection gets a /64); IPv4 by
//!   the address. IPv4-mapped IPv6 addresses count as IPv4.
//!
//! Bounds: at most [`HOLDERS_PER_ADDRESS`] holders per address (the oldest
//! is dropped); holders whose interval ended more than the retention before
//! the clock are dropped by [`IpTable::cleanup`], and an address without
//! holders is removed. So the table holds at most one entry per address that
//! was in use within the retention (7 days by default) or is still open: the
//! size of the operator's address pools. An entry costs about 112 bytes plus
//! the hash table's slack.
//!
//! The maps are hash maps for O(1) lookups on the flow path. Nothing iterates
//! them in a way that reaches state or outputs: cleanup's outcome does not
//! depend on the visiting order, and snapshots write the entries sorted.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// Holders remembered per address.
pub const HOLDERS_PER_ADDRESS: usize = 4;

const OPEN: i64 = i64::MAX;

/// Which device holds an address: the engine's reference to it (partition
/// and slot, stable for the life of the engine), so that the flow path goes
/// from address to device without a search.
pub type DeviceRef = u32;

/// One device's tenure of an address.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct IpHolder {
    pub device: DeviceRef,
    /// Session start (backdated by Acct-Session-Time when the Start was missed), Unix ms.
    pub from: i64,
    /// Session stop; `OPEN` while open. Private so that the sentinel stays internal.
    until: i64,
}

impl IpHolder {
    /// When the session holding the address ended; None while it is open.
    /// (The interval also ends where a later holder's begins.)
    pub fn to(&self) -> Option<i64> {
        (self.until != OPEN).then_some(self.until)
    }
}

/// The holders of one address, oldest first, inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Holders {
    len: u8,
    h: [IpHolder; HOLDERS_PER_ADDRESS],
}

const EMPTY_HOLDER: IpHolder = IpHolder {
    device: 0,
    from: 0,
    until: 0,
};

impl Default for Holders {
    fn default() -> Self {
        Holders {
            len: 0,
            h: [EMPTY_HOLDER; HOLDERS_PER_ADDRESS],
        }
    }
}

impl Holders {
    fn as_slice(&self) -> &[IpHolder] {
        &self.h[..usize::from(self.len)]
    }

    /// End of holder `i`'s interval: its stop, or the next holder's start.
    fn end(&self, i: usize) -> i64 {
        let s = self.as_slice();
        match s.get(i + 1) {
            Some(next) => s[i].until.min(next.from),
            None => s[i].until,
        }
    }

    fn sort(&mut self) {
        let n = usize::from(self.len);
        self.h[..n].sort_unstable_by_key(|h| (h.from, h.device));
    }

    /// Adds a holder, keeping the newest `HOLDERS_PER_ADDRESS` by start.
    fn insert(&mut self, h: IpHolder) {
        let n = usize::from(self.len);
        if n < HOLDERS_PER_ADDRESS {
            self.h[n] = h;
            self.len += 1;
        } else if (h.from, h.device) > (self.h[0].from, self.h[0].device) {
            self.h[0] = h; // replaces the oldest
        } else {
            return; // older than everything remembered
        }
        self.sort();
    }

    /// The open holder of `dev` that still holds the address at `anchor`:
    /// the newest open one, unless a holder of another device started after
    /// it (by `anchor`), which ended its tenure; that one is closed there.
    fn current_of(&mut self, dev: DeviceRef, anchor: i64) -> Option<&mut IpHolder> {
        let n = usize::from(self.len);
        let i = (0..n)
            .rev()
            .find(|&i| self.h[i].device == dev && self.h[i].until == OPEN)?;
        if let Some(next) = self.h[i + 1..n]
            .iter()
            .find(|y| y.device != dev && y.from <= anchor)
            .map(|y| y.from)
        {
            // A stale tenure (its Stop was missed): make its implicit end explicit.
            self.h[i].until = next.max(self.h[i].from);
            return None;
        }
        Some(&mut self.h[i])
    }

    /// The earliest start a tenure of `dev` known to hold the address at
    /// `anchor` may claim: never back into the closed tenure of another
    /// device that began before `anchor`, nor before the start of an open
    /// one (backdating by Acct-Session-Time, or clock skew, must not take
    /// time from a known holder, nor reorder the holders).
    fn clamp_from(&self, dev: DeviceRef, from: i64, anchor: i64) -> i64 {
        let floor = self
            .as_slice()
            .iter()
            .filter(|y| y.device != dev && y.from < anchor)
            .map(|y| if y.until == OPEN { y.from + 1 } else { y.until })
            .max()
            .unwrap_or(i64::MIN);
        from.min(anchor).max(floor.min(anchor))
    }

    fn open(&mut self, dev: DeviceRef, from: i64, anchor: i64) {
        let from = self.clamp_from(dev, from, anchor);
        if let Some(h) = self.current_of(dev, anchor) {
            if from < h.from {
                h.from = from;
                self.sort();
            }
            return;
        }
        self.insert(IpHolder {
            device: dev,
            from,
            until: OPEN,
        });
    }

    fn close(&mut self, dev: DeviceRef, from: i64, at: i64) {
        if let Some(h) = self.current_of(dev, at) {
            h.until = at.max(h.from);
            return;
        }
        // A Stop whose Start was never seen (or was already dropped).
        let from = self.clamp_from(dev, from, at);
        if self
            .as_slice()
            .iter()
            .any(|h| h.device == dev && h.from == from)
        {
            return;
        }
        self.insert(IpHolder {
            device: dev,
            from,
            until: at,
        });
    }

    fn holder_at(&self, t: i64, slack: i64) -> Option<DeviceRef> {
        let s = self.as_slice();
        // The last holder starting at or before t: the only one whose interval can hold t.
        let after = s.partition_point(|h| h.from <= t);
        if after > 0 && t <= s[after - 1].until {
            return Some(s[after - 1].device);
        }
        // Not inside any interval: nearest neighbour within the slack.
        let before = (after > 0).then(|| (t.saturating_sub(self.end(after - 1)), after - 1));
        let next = s.get(after).map(|h| (h.from.saturating_sub(t), after));
        let best = match (before, next) {
            (Some(b), Some(n)) => Some(if n.0 <= b.0 { n } else { b }),
            (b, n) => b.or(n),
        };
        best.filter(|(d, _)| *d <= slack).map(|(_, i)| s[i].device)
    }

    /// Drops holders whose interval ended before `before`.
    fn cleanup(&mut self, before: i64) {
        let n = usize::from(self.len);
        let mut keep = [true; HOLDERS_PER_ADDRESS];
        for (i, k) in keep.iter_mut().enumerate().take(n) {
            *k = self.end(i) >= before;
        }
        let mut w = 0;
        for (i, &k) in keep.iter().enumerate().take(n) {
            if k {
                self.h[w] = self.h[i];
                w += 1;
            }
        }
        for h in &mut self.h[w..n] {
            *h = EMPTY_HOLDER;
        }
        self.len = w as u8;
    }
}

impl Serialize for Holders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Holders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Holders, D::Error> {
        let v = Vec::<IpHolder>::deserialize(d)?;
        if v.len() > HOLDERS_PER_ADDRESS {
            return Err(D::Error::custom("too many holders for one address"));
        }
        let mut h = Holders::default();
        h.h[..v.len()].copy_from_slice(&v);
        h.len = v.len() as u8;
        Ok(h)
    }
}

/// A fixed (unseeded) hasher for the address maps: fast, and the same in
/// every process. Only lookups depend on it, never state or output order.
/// Keys come from authenticated accounting, so flooding by crafted keys is
/// not a concern; lookups of arbitrary flow addresses add no keys.
#[derive(Clone, Copy, Default, Debug)]
pub struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = FixedHasher;
    fn build_hasher(&self) -> FixedHasher {
        FixedHasher(0x243F_6A88_85A3_08D3)
    }
}

pub struct FixedHasher(u64);

impl Hasher for FixedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

/// MurmurHash3's 64-bit finalizer: a stable, well-mixing permutation.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Key {
    V4(u32),
    /// The /64 prefix.
    V6(u64),
}

fn key(ip: IpAddr) -> Key {
    match ip.to_canonical() {
        IpAddr::V4(a) => Key::V4(u32::from(a)),
        IpAddr::V6(a) => Key::V6((u128::from(a) >> 64) as u64),
    }
}

/// The engine-global address → holders table.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct IpTable {
    v4: HashMap<u32, Holders, FixedState>,
    v6: HashMap<u64, Holders, FixedState>,
}

impl IpTable {
    fn get(&self, ip: IpAddr) -> Option<&Holders> {
        match key(ip) {
            Key::V4(k) => self.v4.get(&k),
            Key::V6(k) => self.v6.get(&k),
        }
    }

    fn entry(&mut self, ip: IpAddr) -> &mut Holders {
        match key(ip) {
            Key::V4(k) => self.v4.entry(k).or_default(),
            Key::V6(k) => self.v6.entry(k).or_default(),
        }
    }

    /// `dev`'s session with this address is open since `from` (or earlier:
    /// a repeated open only moves the start back), as a record at `anchor`
    /// (its event time) says.
    pub fn open(&mut self, ip: IpAddr, dev: DeviceRef, from: i64, anchor: i64) {
        self.entry(ip).open(dev, from, anchor);
    }

    /// `dev`'s session with this address ended at `at`. Without an open
    /// holder (Stop without Start), a closed holder `[from, at]` is added.
    pub fn close(&mut self, ip: IpAddr, dev: DeviceRef, from: i64, at: i64) {
        self.entry(ip).close(dev, from, at);
    }

    /// Who held `ip` at `t`, allowing `slack` ms outside the intervals (see the module docs).
    pub fn holder_at(&self, ip: IpAddr, t: i64, slack: i64) -> Option<DeviceRef> {
        self.get(ip)?.holder_at(t, slack)
    }

    /// Looks `ip` up only to bring its entry into cache (see `prefetch`).
    pub(crate) fn touch(&self, ip: IpAddr) {
        if let Some(h) = self.get(ip) {
            crate::prefetch::prefetch(h);
            crate::prefetch::prefetch((h as *const Holders).cast::<u8>().wrapping_add(64));
        }
    }

    /// The holder at the first of `times` that has one, and that time.
    pub fn holder_at_any(&self, ip: IpAddr, times: &[i64], slack: i64) -> Option<(DeviceRef, i64)> {
        let h = self.get(ip)?;
        times
            .iter()
            .find_map(|&t| h.holder_at(t, slack).map(|d| (d, t)))
    }

    /// The remembered holders of `ip`, oldest first.
    pub fn history(&self, ip: IpAddr) -> &[IpHolder] {
        self.get(ip).map_or(&[], |h| h.as_slice())
    }

    /// Whether `valid` holds for every holder (snapshot validation).
    pub fn all_devices(&self, mut valid: impl FnMut(DeviceRef) -> bool) -> bool {
        self.v4
            .values()
            .chain(self.v6.values())
            .all(|h| h.as_slice().iter().all(|x| valid(x.device)))
    }

    /// Addresses (IPv4) and /64 prefixes (IPv6) in the table.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops holders whose interval ended before `before`, and addresses left
    /// without holders. The result does not depend on the visiting order.
    pub fn cleanup(&mut self, before: i64) {
        self.v4.retain(|_, h| {
            h.cleanup(before);
            h.len > 0
        });
        self.v6.retain(|_, h| {
            h.cleanup(before);
            h.len > 0
        });
    }
}

/// Snapshot form: entries sorted by key, so that equal tables encode to equal bytes.
#[derive(Serialize, Deserialize)]
struct SortedTable<V4, V6> {
    v4: V4,
    v6: V6,
}

impl Serialize for IpTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v4: Vec<(&u32, &Holders)> = self.v4.iter().collect();
        v4.sort_unstable_by_key(|(k, _)| **k);
        let mut v6: Vec<(&u64, &Holders)> = self.v6.iter().collect();
        v6.sort_unstable_by_key(|(k, _)| **k);
        SortedTable { v4, v6 }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for IpTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IpTable, D::Error> {
        let t = SortedTable::<Vec<(u32, Holders)>, Vec<(u64, Holders)>>::deserialize(d)?;
        Ok(IpTable {
            v4: t.v4.into_iter().collect(),
            v6: t.v6.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u64) -> DeviceRef {
        n as DeviceRef + 100
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    const S: i64 = 60_000;

    #[test]
    fn reuse_splits_time_between_holders() {
        let mut t = IpTable::default();
        let a = ip("10.45.0.7");
        t.open(a, d(1), 1_000_000, 1_000_000);
        t.close(a, d(1), 1_000_000, 2_000_000);
        t.open(a, d(2), 3_000_000, 3_000_000);
        assert_eq!(t.holder_at(a, 1_500_000, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 2_000_000, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 2_060_000, S), Some(d(1)), "slack after stop");
        assert_eq!(t.holder_at(a, 2_060_001, S), None);
        assert_eq!(t.holder_at(a, 2_500_000, S), None);
        assert_eq!(
            t.holder_at(a, 2_940_000, S),
            Some(d(2)),
            "slack before start"
        );
        assert_eq!(t.holder_at(a, 9_000_000, S), Some(d(2)));
        assert_eq!(t.holder_at(a, 940_000, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 939_999, S), None);
        assert_eq!(t.history(a).len(), 2);
        assert_eq!(t.history(a)[0].to(), Some(2_000_000));
        assert_eq!(t.history(a)[1].to(), None);
    }

    #[test]
    fn a_later_start_ends_an_open_holder_and_slack_never_crosses_into_it() {
        let mut t = IpTable::default();
        let a = ip("10.45.0.8");
        t.open(a, d(1), 1_000_000, 1_000_000); // never stopped
        t.open(a, d(2), 2_000_000, 2_000_000);
        assert_eq!(t.holder_at(a, 1_999_999, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 2_000_000, S), Some(d(2)));
        // Reordered: the Start of the earlier holder arrives last.
        let mut u = IpTable::default();
        u.open(a, d(2), 2_000_000, 2_000_000);
        u.open(a, d(1), 1_000_000, 1_000_000);
        assert_eq!(u.history(a), t.history(a));
        // A gap shorter than twice the slack: nearest holder wins, tie to the later.
        let mut g = IpTable::default();
        g.close(a, d(1), 0, 1_000_000);
        g.open(a, d(2), 1_050_000, 1_050_000);
        assert_eq!(g.holder_at(a, 1_020_000, S), Some(d(1)));
        assert_eq!(g.holder_at(a, 1_025_000, S), Some(d(2)));
        assert_eq!(g.holder_at(a, 1_030_000, S), Some(d(2)));
    }

    #[test]
    fn backdating_never_takes_time_from_another_holder() {
        let mut t = IpTable::default();
        let a = ip("10.45.0.10");
        t.close(a, d(1), 1_000_000, 2_000_000);
        // d(2)'s first record is an Interim at 5,000,000 whose session time
        // says it began at 1,500,000: inside d(1)'s tenure, so clamped.
        t.open(a, d(2), 1_500_000, 5_000_000);
        assert_eq!(t.history(a)[1].from, 2_000_000);
        assert_eq!(t.holder_at(a, 1_900_000, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 2_000_001, S), Some(d(2)));
        assert_eq!(t.holder_at(a, 9_000_000, S), Some(d(2)));
    }

    #[test]
    fn a_device_back_on_its_address_after_a_missed_stop_gets_a_new_tenure() {
        let mut t = IpTable::default();
        let a = ip("10.45.0.11");
        t.open(a, d(1), 1_000_000, 1_000_000); // Stop missed
        t.close(a, d(2), 2_000_000, 3_000_000);
        t.open(a, d(1), 4_000_000, 4_000_000);
        let h = t.history(a);
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[0].to(),
            Some(2_000_000),
            "stale tenure closed where d(2) began"
        );
        assert_eq!(t.holder_at(a, 1_500_000, S), Some(d(1)));
        assert_eq!(t.holder_at(a, 2_500_000, S), Some(d(2)));
        assert_eq!(t.holder_at(a, 3_500_000, S), None);
        assert_eq!(t.holder_at(a, 5_000_000, S), Some(d(1)));
        t.close(a, d(1), 4_000_000, 6_000_000);
        assert_eq!(t.history(a)[2].to(), Some(6_000_000));
    }

    #[test]
    fn keeps_the_newest_four_and_cleans_up_closed_ones() {
        let mut t = IpTable::default();
        let a = ip("10.45.0.9");
        for n in 0..6u64 {
            let from = n as i64 * 1000;
            t.close(a, d(n), from, from + 500);
        }
        let h = t.history(a);
        assert_eq!(h.len(), HOLDERS_PER_ADDRESS);
        assert_eq!(h[0].device, d(2));
        assert_eq!(h[3].device, d(5));
        // An older holder than all remembered is not added.
        t.close(a, d(9), 0, 10);
        assert_eq!(t.history(a)[0].device, d(2));
        t.cleanup(4_000);
        assert_eq!(t.history(a).len(), 2);
        t.cleanup(6_000);
        assert!(t.is_empty());
        // Open holders stay...
        t.open(a, d(1), 0, 0);
        t.cleanup(i64::MAX - 1);
        assert_eq!(t.len(), 1);
        // ...unless a later holder ended their tenure.
        t.close(a, d(2), 1000, 2000);
        t.cleanup(1500);
        assert_eq!(t.history(a).len(), 1);
        assert_eq!(t.history(a)[0].device, d(2));
    }

    #[test]
    fn ipv6_is_keyed_by_the_64_prefix_and_v4_mapped_is_v4() {
        let mut t = IpTable::default();
        t.open(ip("2001:db8:1:2::"), d(1), 0, 0);
        assert_eq!(t.holder_at(ip("2001:db8:1:2:aa::5"), 10, S), Some(d(1)));
        assert_eq!(t.holder_at(ip("2001:db8:1:3::5"), 10, S), None);
        t.open(ip("10.0.0.1"), d(2), 0, 0);
        assert_eq!(t.holder_at(ip("::ffff:10.0.0.1"), 10, S), Some(d(2)));
    }

    #[test]
    fn snapshot_form_is_sorted_and_round_trips() {
        let mut a = IpTable::default();
        let mut b = IpTable::default();
        for n in 0..200u32 {
            a.open(
                IpAddr::from(std::net::Ipv4Addr::from(n * 7919)),
                d(n.into()),
                5,
                5,
            );
        }
        for n in (0..200u32).rev() {
            b.open(
                IpAddr::from(std::net::Ipv4Addr::from(n * 7919)),
                d(n.into()),
                5,
                5,
            );
        }
        let ea = postcard::to_stdvec(&a).unwrap();
        assert_eq!(ea, postcard::to_stdvec(&b).unwrap());
        assert_eq!(postcard::from_bytes::<IpTable>(&ea).unwrap(), a);
    }
}
