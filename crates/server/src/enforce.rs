//! The enforcement adapter: actions the engine decided in enforce mode are
//! told to the network (RFC 5176 Disconnect / CoA through
//! [`crate::coa::Enforcer`]), and what the network answered goes back into
//! the journal as `Event::ActionResult`, for the audit trail.
//!
//! Only live actions are enforced: the engine thread hands them over as it
//! applies them. Recovery replays the journal without this adapter, so a
//! restart never sends an action twice (an action whose answer was not yet
//! journaled when the server stopped keeps no result in the audit).

use crate::coa::{EnforceAction, EnforceRequest, EnforceResult, Enforcer};
use crate::pipeline::Submission;
use simguard_engine::rules::{Action, ActionKind, ActionResult};
use simguard_engine::{Engine, Event, Lifecycle};
use std::net::Ipv4Addr;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

/// The journal's submission channel, shared with the jobs in flight and
/// taken away at shutdown: the journal thread ends only once every sender
/// is gone, and it must not wait for NASes that do not answer.
type SharedSubmit = Arc<Mutex<Option<SyncSender<Submission>>>>;

/// Jobs waiting for the enforcer. Past this, new actions get an "error"
/// result at once rather than queueing without bound.
pub const QUEUE: usize = 4096;

/// Rate used when a lifecycle is set to throttled without a rate.
pub const DEFAULT_THROTTLE_KBPS: u32 = 64;

/// One session of the device, as the NAS knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTarget {
    pub nas: String,
    pub session_id: String,
    pub framed_ip: Option<Ipv4Addr>,
}

/// An action to enforce, with the device's sessions at the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceJob {
    pub action: u64,
    /// When the record that triggered the action arrived (wall clock, Unix
    /// ms; 0 = unknown), to measure trigger-to-send latency.
    pub trigger_received: i64,
    pub imsi: simguard_engine::Digits,
    pub request: Option<EnforceAction>,
    pub sessions: Vec<SessionTarget>,
}

/// What a decided action means on the wire (None: nothing to send).
pub fn wire_action(kind: ActionKind) -> Option<EnforceAction> {
    match kind {
        ActionKind::Notify => None,
        ActionKind::Block => Some(EnforceAction::Disconnect),
        ActionKind::Throttle { kbps } => Some(EnforceAction::Throttle { kbps }),
        ActionKind::Quarantine => Some(EnforceAction::Quarantine),
        ActionKind::Unthrottle | ActionKind::Release => Some(EnforceAction::Release),
        // A blocked device has no session; the next attach is admitted.
        ActionKind::Unblock => None,
        ActionKind::SetLifecycle { state } => match state {
            Lifecycle::Blocked | Lifecycle::Retired => Some(EnforceAction::Disconnect),
            Lifecycle::Throttled => Some(EnforceAction::Throttle {
                kbps: DEFAULT_THROTTLE_KBPS,
            }),
            Lifecycle::Quarantined => Some(EnforceAction::Quarantine),
            Lifecycle::Active => Some(EnforceAction::Release),
        },
    }
}

/// The job for an action the engine just decided, or None when the network
/// need not be told. Reads the device's open sessions from the engine.
pub fn job_for(engine: &Engine, a: &Action, trigger_received: i64) -> Option<EnforceJob> {
    if !a.enforce {
        return None;
    }
    let sessions = engine
        .device(a.imsi)
        .map(|d| {
            d.sessions
                .iter()
                .map(|s| SessionTarget {
                    nas: engine.syms().resolve(s.nas).to_string(),
                    session_id: s.id.to_string(),
                    framed_ip: s.framed_ip,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(EnforceJob {
        action: a.id,
        trigger_received,
        imsi: a.imsi,
        request: wire_action(a.kind),
        sessions,
    })
}

fn result(
    job: &EnforceJob,
    result: &str,
    detail: String,
    attempts: u32,
    sent: Vec<String>,
) -> Event {
    Event::ActionResult(ActionResult {
        action: job.action,
        time: crate::acct::now_ms(),
        imsi: job.imsi,
        result: result.to_string(),
        detail,
        attempts,
        sent,
    })
}

/// Sends one job's requests (one per open session) and journals what the
/// network answered.
async fn enforce(
    enforcer: &Enforcer,
    submit: &SharedSubmit,
    metrics: &crate::metrics::Metrics,
    job: EnforceJob,
) {
    let mut events = Vec::new();
    match job.request {
        None => events.push(result(
            &job,
            "not_needed",
            "nothing to send: the action needs no change on the network".into(),
            0,
            Vec::new(),
        )),
        Some(_) if job.sessions.is_empty() => events.push(result(
            &job,
            "no_session",
            "the device has no open session; admission control applies at its next attach".into(),
            0,
            Vec::new(),
        )),
        Some(action) => {
            for s in &job.sessions {
                let req = EnforceRequest::new(
                    s.nas.clone(),
                    s.session_id.clone(),
                    job.imsi.to_string(),
                    s.framed_ip,
                    action,
                );
                if job.trigger_received > 0 {
                    // The request leaves now (the first transmission is
                    // immediate): trigger-to-send latency.
                    let ms = (crate::acct::now_ms() - job.trigger_received).max(0);
                    metrics.enforce_latency.record(ms as f64 / 1000.0);
                }
                let o = enforcer.send(req).await;
                let mut sent = Vec::new();
                if let (Some(code), Some(to)) = (&o.code, o.to) {
                    sent.push(format!(
                        "{code} to {} ({to}) for session {}",
                        s.nas, s.session_id
                    ));
                }
                sent.extend(o.sent_attributes.iter().cloned());
                let detail = match &o.result {
                    EnforceResult::Nak { error_cause, text } => {
                        format!("Error-Cause {error_cause} {text}")
                    }
                    EnforceResult::SessionGone => {
                        "Error-Cause 503 Session-Context-Not-Found: the session was already gone"
                            .into()
                    }
                    EnforceResult::NoSuchNas => format!("no CoA address for NAS {}", s.nas),
                    _ => o
                        .rtt_ms
                        .map_or(String::new(), |ms| format!("answered in {ms} ms")),
                };
                events.push(result(&job, o.result.as_str(), detail, o.attempts, sent));
            }
        }
    }
    let (done, rx) = tokio::sync::oneshot::channel();
    let sent = match submit.lock() {
        Ok(guard) => guard
            .as_ref()
            .map(|tx| tx.try_send(Submission::Api { events, done }).is_ok()),
        Err(_) => None,
    };
    match sent {
        Some(true) => {}
        Some(false) => {
            tracing::warn!(
                action = job.action,
                "journal queue full: enforcement result not recorded"
            );
            return;
        }
        None => {
            tracing::warn!(
                action = job.action,
                "shutting down: enforcement result not recorded"
            );
            return;
        }
    }
    if let Ok(Err(e)) = rx.await {
        tracing::warn!(action = job.action, error = %e, "enforcement result not journaled");
    }
}

/// Runs until the job channel closes. Jobs run concurrently (each waits for
/// its NAS's answer, with retransmissions), at most 256 at a time, started
/// in the order the engine decided them.
pub async fn run(
    enforcer: Arc<Enforcer>,
    mut rx: tokio::sync::mpsc::Receiver<EnforceJob>,
    submit: SyncSender<Submission>,
    metrics: crate::metrics::Metrics,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let submit: SharedSubmit = Arc::new(Mutex::new(Some(submit)));
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    loop {
        let job = tokio::select! {
            job = rx.recv() => job,
            _ = &mut stop => None,
        };
        let Some(job) = job else {
            break;
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (enforcer, submit, metrics) = (enforcer.clone(), submit.clone(), metrics.clone());
        tokio::spawn(async move {
            enforce(&enforcer, &submit, &metrics, job).await;
            drop(permit);
        });
    }
    // Let the journal thread end even while requests are still in flight.
    let taken = submit.lock().map(|mut g| g.take());
    drop(taken);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_what_the_network_is_told() {
        assert_eq!(
            wire_action(ActionKind::Block),
            Some(EnforceAction::Disconnect)
        );
        assert_eq!(
            wire_action(ActionKind::Throttle { kbps: 32 }),
            Some(EnforceAction::Throttle { kbps: 32 })
        );
        assert_eq!(
            wire_action(ActionKind::Quarantine),
            Some(EnforceAction::Quarantine)
        );
        assert_eq!(
            wire_action(ActionKind::Release),
            Some(EnforceAction::Release)
        );
        assert_eq!(wire_action(ActionKind::Notify), None);
        assert_eq!(wire_action(ActionKind::Unblock), None);
        assert_eq!(
            wire_action(ActionKind::SetLifecycle {
                state: Lifecycle::Retired
            }),
            Some(EnforceAction::Disconnect)
        );
    }
}
