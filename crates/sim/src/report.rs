//! The run summary.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Requests sent, by Acct-Status-Type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub start: u64,
    pub interim: u64,
    pub stop: u64,
}

/// What a run did. Counts are of requests (a retransmission is not a new request).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// "fleet" or "load".
    pub mode: String,
    pub devices: u32,
    /// Requests sent (first transmissions).
    pub sent: u64,
    /// Requests that got a valid Accounting-Response.
    pub answered: u64,
    /// Extra transmissions of requests already sent.
    pub retransmits: u64,
    /// Requests given up on after the last retry.
    pub timeouts: u64,
    /// Responses that failed to parse, had the wrong code, or a wrong Response Authenticator.
    pub bad_responses: u64,
    /// Valid answers to a request already answered (the server answered a retransmission too).
    pub duplicate_responses: u64,
    /// Responses whose Identifier matched no request awaiting one.
    pub unmatched_responses: u64,
    /// Requests still unanswered when a shutdown cut the run short; neither answered nor timed out.
    pub abandoned: u64,
    pub by_status: StatusCounts,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    /// Simulated time (Unix seconds) at the start.
    pub sim_time_start: u64,
    /// Simulated time (Unix seconds) the fleet had reached: the time of the earliest
    /// event not yet sent, or the simulated clock if none was overdue.
    pub sim_time_end: u64,
    /// Largest observed gap between the simulated clock and the event being sent: how far
    /// the rate limit (or the server) held simulated time back.
    pub max_lag_secs: f64,
    pub wall_seconds: f64,
    /// Rate the run aimed at (requests/s).
    pub target_rate: u32,
    /// Requests sent per wall second while sending.
    pub achieved_rate: f64,
    /// Requests answered per wall second while sending.
    pub answered_rate: f64,
    /// IPFIX data records (flows) sent to the collector.
    #[serde(default)]
    pub flows_exported: u64,
    /// IPFIX messages sent to the collector.
    #[serde(default)]
    pub ipfix_messages: u64,
}

impl SimReport {
    /// True when the rate limit (or lack of free identifiers) kept simulated time from
    /// following the configured speed by more than a report cycle of the busiest device.
    pub fn throttled(&self) -> bool {
        self.max_lag_secs > 60.0
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mode            {} ({} devices)",
            self.mode, self.devices
        )?;
        writeln!(
            f,
            "sent            {} (start {}, interim {}, stop {})",
            self.sent, self.by_status.start, self.by_status.interim, self.by_status.stop
        )?;
        writeln!(f, "answered        {}", self.answered)?;
        writeln!(
            f,
            "retransmits     {}   timeouts {}   bad responses {}",
            self.retransmits, self.timeouts, self.bad_responses
        )?;
        if self.duplicate_responses + self.unmatched_responses + self.abandoned > 0 {
            writeln!(
                f,
                "duplicates      {}   unmatched {}   abandoned {}",
                self.duplicate_responses, self.unmatched_responses, self.abandoned
            )?;
        }
        writeln!(
            f,
            "latency         p50 {} us   p99 {} us   max {} us",
            self.latency_p50_us, self.latency_p99_us, self.latency_max_us
        )?;
        writeln!(
            f,
            "rate            {:.0} req/s sent, {:.0} req/s answered (target {})",
            self.achieved_rate, self.answered_rate, self.target_rate
        )?;
        if self.ipfix_messages > 0 || self.flows_exported > 0 {
            writeln!(
                f,
                "ipfix           {} flows in {} messages",
                self.flows_exported, self.ipfix_messages
            )?;
        }
        let span = self.sim_time_end.saturating_sub(self.sim_time_start);
        writeln!(
            f,
            "sim time        {} .. {} ({:.1} h simulated in {:.1} s wall)",
            self.sim_time_start,
            self.sim_time_end,
            span as f64 / 3600.0,
            self.wall_seconds
        )?;
        if self.throttled() {
            writeln!(
                f,
                "warning         simulated time lagged up to {:.0} s behind the clock: raise --rate or lower --speed",
                self.max_lag_secs
            )?;
        }
        Ok(())
    }
}
