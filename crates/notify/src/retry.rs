//! When to try again: exponential back-off per notification, and a circuit
//! breaker per channel. Pure: the caller passes the clock (Unix ms).
//!
//! The breaker exists so that an endpoint that is down costs one probe per
//! open period instead of one time-out per queued notification, and so that
//! 200 alerts raised during an outage do not each burn their retry budget
//! against a dead peer: while open, notifications are deferred without an
//! attempt.

/// Back-off and breaker settings (from `[notify]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry, ms; it doubles per attempt.
    pub min_delay_ms: i64,
    /// Ceiling of the delay, ms.
    pub max_delay_ms: i64,
    /// Give up this long after the first attempt, ms (24 h by default).
    pub give_up_after_ms: i64,
    /// Consecutive retryable failures that open a channel's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before one probe, ms; doubles while
    /// probes fail, up to `max_delay_ms`.
    pub breaker_open_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay_ms: 5_000,
            max_delay_ms: 30 * 60_000,
            give_up_after_ms: 24 * 3_600_000,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
        }
    }
}

impl RetryPolicy {
    /// When to retry after `attempts` failed attempts (1 = the first
    /// failed), at `now`, honouring a peer's Retry-After (capped at the
    /// maximum delay). None: give up, because the next try would fall after
    /// `first_attempt + give_up_after_ms`.
    pub fn next_try(
        &self,
        attempts: u32,
        first_attempt: i64,
        now: i64,
        retry_after_ms: Option<i64>,
    ) -> Option<i64> {
        let shift = attempts.saturating_sub(1).min(30);
        let backoff = self
            .min_delay_ms
            .saturating_mul(1i64 << shift)
            .min(self.max_delay_ms);
        // Spread retries of notifications that failed together, without a
        // random source: a deterministic jitter of up to 1/8 from `now`.
        let jitter = (now.rem_euclid(1000) * backoff / 8000).max(0);
        let delay = retry_after_ms
            .map(|r| r.clamp(0, self.max_delay_ms).max(backoff))
            .unwrap_or(backoff + jitter);
        let at = now + delay;
        (at <= first_attempt.saturating_add(self.give_up_after_ms)).then_some(at)
    }
}

/// A channel's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Sending normally.
    Closed,
    /// Not sending until `until` (Unix ms); then one probe.
    Open { until: i64 },
    /// One probe is in flight; everything else waits for its outcome.
    HalfOpen,
}

/// The breaker of one channel (endpoint).
#[derive(Clone, Debug)]
pub struct Breaker {
    policy: RetryPolicy,
    state: CircuitState,
    /// Consecutive retryable failures while closed.
    failures: u32,
    /// How many times in a row it opened (the open period doubles).
    opened: u32,
}

/// What the breaker says about sending now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Send.
    Send,
    /// Send this one as the probe; the rest wait until it reports.
    Probe,
    /// Do not send; look again at this time (Unix ms).
    WaitUntil(i64),
}

impl Breaker {
    pub fn new(policy: RetryPolicy) -> Breaker {
        Breaker {
            policy,
            state: CircuitState::Closed,
            failures: 0,
            opened: 0,
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Whether a notification may be sent at `now`.
    pub fn permit(&mut self, now: i64) -> Permit {
        match self.state {
            CircuitState::Closed => Permit::Send,
            CircuitState::Open { until } if now >= until => {
                self.state = CircuitState::HalfOpen;
                Permit::Probe
            }
            CircuitState::Open { until } => Permit::WaitUntil(until),
            // The probe's outcome decides; check again shortly.
            CircuitState::HalfOpen => Permit::WaitUntil(now + self.policy.min_delay_ms.min(1000)),
        }
    }

    /// A delivered (or permanently failed: the peer answered) attempt.
    pub fn success(&mut self) {
        self.state = CircuitState::Closed;
        self.failures = 0;
        self.opened = 0;
    }

    /// A retryable failure at `now`. Returns true when this opened the
    /// circuit.
    pub fn failure(&mut self, now: i64) -> bool {
        match self.state {
            CircuitState::Closed => {
                self.failures += 1;
                if self.failures >= self.policy.breaker_failures.max(1) {
                    self.open(now);
                    return true;
                }
                false
            }
            CircuitState::HalfOpen => {
                self.open(now);
                true
            }
            // A failure of an attempt started before it opened.
            CircuitState::Open { .. } => false,
        }
    }

    fn open(&mut self, now: i64) {
        let shift = self.opened.min(20);
        let period = self
            .policy
            .breaker_open_ms
            .saturating_mul(1i64 << shift)
            .min(self.policy.max_delay_ms.max(self.policy.breaker_open_ms));
        self.opened += 1;
        self.failures = 0;
        self.state = CircuitState::Open {
            until: now + period,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        min_delay_ms: 1000,
        max_delay_ms: 60_000,
        give_up_after_ms: 3_600_000,
        breaker_failures: 3,
        breaker_open_ms: 10_000,
    };

    #[test]
    fn backoff_doubles_to_the_ceiling_and_gives_up_after_the_budget() {
        // now % 1000 == 0: no jitter.
        let t0 = 1_000_000;
        assert_eq!(P.next_try(1, t0, t0, None), Some(t0 + 1000));
        assert_eq!(P.next_try(2, t0, t0, None), Some(t0 + 2000));
        assert_eq!(P.next_try(4, t0, t0, None), Some(t0 + 8000));
        assert_eq!(P.next_try(20, t0, t0, None), Some(t0 + 60_000));
        // Jitter stays under an eighth of the back-off.
        let j = P.next_try(3, t0, t0 + 999, None).unwrap() - (t0 + 999);
        assert!((4000..4500).contains(&j), "{j}");
        // Retry-After is honoured, but never below the back-off nor above the ceiling.
        assert_eq!(P.next_try(1, t0, t0, Some(30_000)), Some(t0 + 30_000));
        assert_eq!(P.next_try(3, t0, t0, Some(10)), Some(t0 + 4000));
        assert_eq!(P.next_try(1, t0, t0, Some(10_000_000)), Some(t0 + 60_000));
        // The budget: one hour after the first attempt.
        assert_eq!(
            P.next_try(9, t0, t0 + 3_600_000 - 60_000, None),
            Some(t0 + 3_600_000)
        );
        assert_eq!(P.next_try(9, t0, t0 + 3_600_000 - 59_000, None), None);
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let mut b = Breaker::new(P);
        assert_eq!(b.permit(0), Permit::Send);
        assert!(!b.failure(0));
        assert!(!b.failure(1));
        assert!(b.failure(2));
        assert_eq!(b.permit(3), Permit::WaitUntil(10_002));
        assert_eq!(b.permit(10_002), Permit::Probe);
        // While the probe is out, nothing else goes.
        assert!(matches!(b.permit(10_003), Permit::WaitUntil(_)));
        // The probe fails: open again, for twice as long.
        assert!(b.failure(10_500));
        assert_eq!(b.state(), CircuitState::Open { until: 30_500 });
        assert_eq!(b.permit(30_500), Permit::Probe);
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.permit(30_501), Permit::Send);
        // Success resets the count: two failures do not open it.
        b.failure(1);
        b.failure(2);
        assert_eq!(b.permit(3), Permit::Send);
    }
}
