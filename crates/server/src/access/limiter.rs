//! Back-off of failed logins, per username and per client address.
//!
//! Each key may fail `free` times; from then on every further failure
//! doubles a wait (1 s, 2 s, 4 s ... at most [`MAX_WAIT_MS`]) before the next
//! attempt is even checked. Failures are forgotten [`FORGET_MS`] after the
//! last one, and a success forgets the username's. Unknown usernames are
//! counted exactly like known ones, so the back-off tells nothing about
//! which names exist. Memory is bounded: at most `capacity` keys per table;
//! when full, forgotten keys go first, then the oldest.

use std::collections::HashMap;

/// Longest wait between attempts once backed off.
pub const MAX_WAIT_MS: i64 = 5 * 60 * 1000;
/// Quiet time after which a key's failures are forgotten.
pub const FORGET_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last_ms: i64,
    blocked_until_ms: i64,
}

#[derive(Debug)]
pub struct Backoff {
    free: u32,
    capacity: usize,
    keys: HashMap<String, Entry>,
}

impl Backoff {
    pub fn new(free: u32, capacity: usize) -> Backoff {
        Backoff {
            free: free.max(1),
            capacity: capacity.max(1),
            keys: HashMap::new(),
        }
    }

    /// Ok when `key` may try now; else how long to wait, ms.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), i64> {
        match self.keys.get(key) {
            Some(e) if now_ms - e.last_ms < FORGET_MS && now_ms < e.blocked_until_ms => {
                Err(e.blocked_until_ms - now_ms)
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&mut self, key: &str, now_ms: i64) {
        if !self.keys.contains_key(key) && self.keys.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let free = self.free;
        let e = self.keys.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            last_ms: now_ms,
            blocked_until_ms: 0,
        });
        if now_ms - e.last_ms >= FORGET_MS {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_ms = now_ms;
        if e.failures >= free {
            let doublings = (e.failures - free).min(20);
            e.blocked_until_ms = now_ms + (1000i64 << doublings).min(MAX_WAIT_MS);
        }
    }

    pub fn forget(&mut self, key: &str) {
        self.keys.remove(key);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn make_room(&mut self, now_ms: i64) {
        self.keys.retain(|_, e| now_ms - e.last_ms < FORGET_MS);
        if self.keys.len() >= self.capacity {
            // Still full of recent failures (an attack from many names or
            // addresses): drop the older half rather than refuse to count.
            let mut lasts: Vec<i64> = self.keys.values().map(|e| e.last_ms).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.keys.retain(|_, e| e.last_ms > cut);
        }
    }
}

/// The two tables a login consults.
#[derive(Debug)]
pub struct LoginLimiter {
    pub by_user: Backoff,
    pub by_addr: Backoff,
}

/// Failures allowed per username before backing off.
pub const FREE_PER_USER: u32 = 5;
/// Failures allowed per client address (several people may share one).
pub const FREE_PER_ADDR: u32 = 20;
/// Keys kept per table.
pub const CAPACITY: usize = 100_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            by_user: Backoff::new(FREE_PER_USER, CAPACITY),
            by_addr: Backoff::new(FREE_PER_ADDR, CAPACITY),
        }
    }
}

impl LoginLimiter {
    /// Ok when both the username and the address may try now; else the
    /// longer wait, ms.
    pub fn check(&self, user: &str, addr: &str, now_ms: i64) -> Result<(), i64> {
        match (
            self.by_user.check(user, now_ms),
            self.by_addr.check(addr, now_ms),
        ) {
            (Ok(()), Ok(())) => Ok(()),
            (a, b) => Err(a.err().unwrap_or(0).max(b.err().unwrap_or(0))),
        }
    }

    pub fn fail(&mut self, user: &str, addr: &str, now_ms: i64) {
        self.by_user.fail(user, now_ms);
        self.by_addr.fail(addr, now_ms);
    }

    /// A good password: the username's failures are forgotten. The
    /// address's are not, or one valid account would reset an attacker's
    /// count against every other.
    pub fn succeed(&mut self, user: &str) {
        self.by_user.forget(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_the_free_failures_and_doubles() {
        let mut b = Backoff::new(3, 10);
        for t in 0..2 {
            b.fail("ann", t);
            assert!(b.check("ann", t).is_ok());
        }
        b.fail("ann", 2);
        assert_eq!(b.check("ann", 2), Err(1000));
        assert!(b.check("ann", 1002).is_ok());
        b.fail("ann", 1002);
        assert_eq!(b.check("ann", 1002), Err(2000));
        assert!(b.check("bob", 1002).is_ok(), "per key");
        for _ in 0..30 {
            b.fail("ann", 5000);
        }
        assert_eq!(b.check("ann", 5000), Err(MAX_WAIT_MS));
        // Forgotten after a quiet period.
        b.fail("ann", 5000 + FORGET_MS);
        assert!(b.check("ann", 5000 + FORGET_MS).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let mut b = Backoff::new(3, 100);
        for i in 0..1000 {
            b.fail(&format!("k{i}"), i);
        }
        assert!(b.len() <= 100, "{}", b.len());
        assert!(b.keys.contains_key("k999"), "the newest are kept");
    }

    #[test]
    fn a_success_forgets_the_user_but_not_the_address() {
        let mut l = LoginLimiter {
            by_user: Backoff::new(2, 10),
            by_addr: Backoff::new(3, 10),
        };
        l.fail("ann", "10.0.0.1", 0);
        l.fail("ann", "10.0.0.1", 0);
        assert!(l.check("ann", "10.0.0.2", 0).is_err());
        l.succeed("ann");
        assert!(l.check("ann", "10.0.0.2", 0).is_ok());
        l.fail("bob", "10.0.0.1", 0);
        assert!(
            l.check("carol", "10.0.0.1", 0).is_err(),
            "the address backs off"
        );
    }
}
