//! Prometheus metrics. Handles are created once and kept, so the hot path
//! pays an atomic add, not a registry lookup.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its render handle.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ];
            let sizes = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_records".into()), &sizes));
            match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Why an accounting packet was dropped; the label of `..._dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    UnknownClient,
    Malformed,
    UnexpectedCode,
    BadAuthenticator,
    MissingMessageAuthenticator,
    BadMessageAuthenticator,
    BadAttribute,
    MissingAttribute,
    Truncated,
    Overload,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::UnknownClient,
        DropReason::Malformed,
        DropReason::UnexpectedCode,
        DropReason::BadAuthenticator,
        DropReason::MissingMessageAuthenticator,
        DropReason::BadMessageAuthenticator,
        DropReason::BadAttribute,
        DropReason::MissingAttribute,
        DropReason::Truncated,
        DropReason::Overload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::Malformed => "malformed",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::BadMessageAuthenticator => "bad_message_authenticator",
            DropReason::BadAttribute => "bad_attribute",
            DropReason::MissingAttribute => "missing_attribute",
            DropReason::Truncated => "truncated",
            DropReason::Overload => "overload",
        }
    }
}

/// Metric handles for the accounting path and the pipeline.
#[derive(Clone)]
pub struct Metrics {
    pub acct_received: Counter,
    pub acct_accepted: Counter,
    pub acct_duplicates: Counter,
    /// Enforced actions not sent because the enforcement queue was full.
    pub enforce_dropped: Counter,
    drops: [Counter; DropReason::ALL.len()],
    pub journal_fsync: Histogram,
    pub journal_batch: Histogram,
    pub journal_records: Counter,
    pub journal_errors: Counter,
    pub answer_latency: Histogram,
    /// From the arrival of the record that triggered an action to the
    /// departure of its CoA/Disconnect (the response issue's benchmark).
    pub enforce_latency: Histogram,
    pub engine_seq: Gauge,
    pub store_seq: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            acct_received: counter!("simguard_radius_acct_received_total"),
            acct_accepted: counter!("simguard_radius_acct_accepted_total"),
            acct_duplicates: counter!("simguard_radius_acct_duplicates_total"),
            enforce_dropped: counter!("simguard_enforce_dropped_total"),
            drops: DropReason::ALL
                .map(|r| counter!("simguard_radius_acct_dropped_total", "reason" => r.as_str())),
            journal_fsync: histogram!("simguard_journal_fsync_seconds"),
            journal_batch: histogram!("simguard_journal_commit_records"),
            journal_records: counter!("simguard_journal_records_total"),
            journal_errors: counter!("simguard_journal_errors_total"),
            answer_latency: histogram!("simguard_radius_acct_answer_seconds"),
            enforce_latency: histogram!("simguard_enforce_trigger_to_send_seconds"),
            engine_seq: gauge!("simguard_engine_applied_seq"),
            store_seq: gauge!("simguard_store_applied_seq"),
        }
    }

    pub fn dropped(&self, r: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.drops[i].increment(1);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Devices by connectivity status and lifecycle, set at scrape time.
pub fn set_device_gauges(
    online: u64,
    offline: u64,
    never: u64,
    unprovisioned: u64,
    by_lifecycle: &[(&'static str, u64)],
) {
    gauge!("simguard_devices", "status" => "online").set(online as f64);
    gauge!("simguard_devices", "status" => "offline").set(offline as f64);
    gauge!("simguard_devices", "status" => "never_seen").set(never as f64);
    gauge!("simguard_devices_unprovisioned").set(unprovisioned as f64);
    for (l, n) in by_lifecycle {
        gauge!("simguard_devices_lifecycle", "state" => *l).set(*n as f64);
    }
}

/// The live event stream (`/api/v1/events`) and the findings behind it.
#[derive(Clone)]
pub struct StreamMetrics {
    /// Clients connected to the stream now.
    pub subscribers: Gauge,
    /// Findings committed to the store for the first time.
    pub findings_stored: Counter,
    /// Findings announced on the stream (after their commit).
    pub findings_published: Counter,
    /// `finding` events written to clients (one per client and finding).
    pub findings_sent: Counter,
    /// Events a slow client fell behind by (each reported to it in a `lagged` event).
    pub lagged: Counter,
    /// `finding` events a client got from the store instead of the broadcast
    /// (Last-Event-ID resumption and catch-up after lagging).
    pub replayed: Counter,
}

impl StreamMetrics {
    pub fn new() -> StreamMetrics {
        StreamMetrics {
            subscribers: gauge!("simguard_events_subscribers"),
            findings_stored: counter!("simguard_findings_stored_total"),
            findings_published: counter!("simguard_events_published_total", "type" => "finding"),
            findings_sent: counter!("simguard_events_sent_total", "type" => "finding"),
            lagged: counter!("simguard_events_lagged_total"),
            replayed: counter!("simguard_events_replayed_total", "type" => "finding"),
        }
    }
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an answer to a CoA/Disconnect request was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoaDrop {
    Malformed,
    /// No request waits for this (NAS, Identifier): late, duplicate or forged.
    Unmatched,
    UnexpectedCode,
    BadAuthenticator,
    BadMessageAuthenticator,
}

impl CoaDrop {
    pub const ALL: [CoaDrop; 5] = [
        CoaDrop::Malformed,
        CoaDrop::Unmatched,
        CoaDrop::UnexpectedCode,
        CoaDrop::BadAuthenticator,
        CoaDrop::BadMessageAuthenticator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CoaDrop::Malformed => "malformed",
            CoaDrop::Unmatched => "unmatched",
            CoaDrop::UnexpectedCode => "unexpected_code",
            CoaDrop::BadAuthenticator => "bad_authenticator",
            CoaDrop::BadMessageAuthenticator => "bad_message_authenticator",
        }
    }
}

/// The RFC 5176 client (`coa.rs`).
#[derive(Clone)]
pub struct CoaMetrics {
    pub retransmissions: Counter,
    drops: [Counter; CoaDrop::ALL.len()],
}

impl CoaMetrics {
    pub fn new() -> CoaMetrics {
        CoaMetrics {
            retransmissions: counter!("simguard_coa_retransmissions_total"),
            drops: CoaDrop::ALL
                .map(|r| counter!("simguard_coa_answers_dropped_total", "reason" => r.as_str())),
        }
    }

    /// One request finished, by action and result (ack, nak, session_gone,
    /// timeout, no_such_nas).
    pub fn finished(&self, action: &'static str, result: &'static str) {
        counter!("simguard_coa_requests_total", "action" => action, "result" => result)
            .increment(1);
    }

    pub fn dropped(&self, r: CoaDrop) {
        if let Some(i) = CoaDrop::ALL.iter().position(|x| *x == r) {
            self.drops[i].increment(1);
        }
    }
}

impl Default for CoaMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The admission server (`auth.rs`).
#[derive(Clone)]
pub struct AuthMetrics {
    pub received: Counter,
    drops: [Counter; DropReason::ALL.len()],
}

impl AuthMetrics {
    pub fn new() -> AuthMetrics {
        AuthMetrics {
            received: counter!("simguard_radius_auth_received_total"),
            drops: DropReason::ALL
                .map(|r| counter!("simguard_radius_auth_dropped_total", "reason" => r.as_str())),
        }
    }

    pub fn dropped(&self, r: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.drops[i].increment(1);
        }
    }

    /// One decision, by outcome (accept, reject) and reason (the grant or
    /// the reject reason).
    pub fn decided(&self, outcome: &'static str, reason: &'static str) {
        counter!("simguard_radius_auth_decisions_total", "outcome" => outcome, "reason" => reason)
            .increment(1);
    }
}

impl Default for AuthMetrics {
    fn default() -> Self {
        Self::new()
    }
}
