//! The delivery worker: sends what is due in the outbox, records every
//! attempt, retries with back-off, and keeps a circuit breaker per channel.
//!
//! It runs on a thread of its own with a single-threaded runtime: its
//! SQLite calls block only it, and the channels' sessions (SMPP, SMTP pool)
//! live on the runtime they were built on.
//!
//! Delivery is at least once: a notification becomes `sent` only in the
//! transaction that records the confirming attempt. If the process dies
//! between a peer's confirmation and that commit, the notification is sent
//! again after restart with the same id (webhook-id, Message-ID), which is
//! what receivers deduplicate on.

use super::render::{alert_message, digest_message};
use super::{Channel, NotifyConfig};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use simguard_notify::retry::{Breaker, CircuitState, Permit, RetryPolicy};
use simguard_notify::webhook::retry_after;
use simguard_notify::{Message, Outcome, Receipt};
use simguard_store::{AttemptResult, Notification, OutboxWriter, Store, StoreReader};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

/// Rows read per look at the outbox.
const BATCH: usize = 256;
/// Look at the outbox at least this often (a due time set by another
/// writer, e.g. a person's clear, also wakes it through the hub).
const MAX_SLEEP: Duration = Duration::from_secs(5);
/// How often finished notifications past `outbox_retention_days` are
/// deleted, and how many per transaction (the store's writers wait for it).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The first pass waits this long after start: a start is busy enough.
const PRUNE_FIRST: Duration = Duration::from_secs(600);
const PRUNE_BATCH: usize = 2000;

/// Receipts kept until their attempt is recorded, at most, and for how long.
const EARLY_RECEIPTS: usize = 4096;
const EARLY_RECEIPT_TTL: Duration = Duration::from_secs(60);

/// What the API, /readyz and /metrics show of one channel.
pub struct ChannelStatus {
    pub kind: &'static str,
    pub endpoint: String,
    /// The channel's own view (bound to the SMSC, last attempt succeeded).
    pub healthy: AtomicBool,
    /// closed, open or half_open.
    pub circuit: Mutex<&'static str>,
    /// Attempts since start, by result.
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    /// Attempt latency, µs, since start.
    pub latency: Mutex<Option<Histogram<u64>>>,
    /// SMS delivery receipts matched since start.
    pub receipts: AtomicU64,
}

/// Every channel's status, by name.
#[derive(Default)]
pub struct NotifyStatus {
    pub channels: BTreeMap<String, ChannelStatus>,
    /// Set when the worker could not start or stopped on an error.
    pub worker_failed: AtomicBool,
}

impl NotifyStatus {
    pub fn new(cfg: &NotifyConfig) -> NotifyStatus {
        let channels = cfg
            .channels
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    ChannelStatus {
                        kind: c.kind(),
                        endpoint: c.endpoint(),
                        // Unknown until the first attempt: not unhealthy.
                        healthy: AtomicBool::new(true),
                        circuit: Mutex::new("closed"),
                        delivered: AtomicU64::new(0),
                        retried: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                        latency: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()),
                        receipts: AtomicU64::new(0),
                    },
                )
            })
            .collect();
        NotifyStatus {
            channels,
            worker_failed: AtomicBool::new(false),
        }
    }

    /// Whether every channel can deliver (for /readyz).
    pub fn all_healthy(&self) -> bool {
        !self.worker_failed.load(Ordering::Relaxed)
            && self
                .channels
                .values()
                .all(|c| c.healthy.load(Ordering::Relaxed) && *c.circuit.lock() == "closed")
    }
}

/// The running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops taking new work, lets attempts in flight finish (bounded by
    /// the channels' time-outs), and joins the thread.
    pub fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.thread.take() {
            // A panic in the worker was logged by the panic hook already.
            let _ = t.join();
        }
    }
}

/// Starts the worker (when any channel is configured).
pub fn spawn(
    cfg: NotifyConfig,
    store_path: PathBuf,
    wake: broadcast::Receiver<Arc<simguard_store::Alert>>,
    status: Arc<NotifyStatus>,
) -> std::io::Result<WorkerHandle> {
    let (stop, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "notification worker: no runtime");
                    status.worker_failed.store(true, Ordering::Relaxed);
                    return;
                }
            };
            rt.block_on(async {
                if let Err(e) = run(cfg, &store_path, wake, stop_rx, status.clone()).await {
                    tracing::error!(error = %e, "notification worker stopped");
                    status.worker_failed.store(true, Ordering::Relaxed);
                }
            });
        })?;
    Ok(WorkerHandle {
        stop,
        thread: Some(thread),
    })
}

fn now_ms() -> i64 {
    crate::acct::now_ms()
}

/// Deletes what `outbox_retention_days` lets go, a batch per transaction,
/// yielding between batches so that deliveries go on.
async fn prune(db: &mut OutboxWriter, before: i64) {
    let mut total = 0;
    loop {
        match db.prune(before, PRUNE_BATCH) {
            Ok(n) => {
                total += n;
                metrics::counter!("simguard_notify_pruned_total").increment(n as u64);
                if n < PRUNE_BATCH {
                    break;
                }
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox retention pass failed; trying again in an hour");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            deleted = total,
            "outbox retention: finished notifications deleted"
        );
    }
}

/// One finished attempt.
struct Done {
    n: Notification,
    started: i64,
    latency: Duration,
    outcome: Outcome,
}

async fn run(
    cfg: NotifyConfig,
    path: &Path,
    mut wake: broadcast::Receiver<Arc<simguard_store::Alert>>,
    mut stop: watch::Receiver<bool>,
    status: Arc<NotifyStatus>,
) -> Result<(), String> {
    let policy = cfg.policy();
    let mut db = OutboxWriter::open(path).map_err(|e| e.to_string())?;
    let reader = Store::open_reader(path).map_err(|e| e.to_string())?;
    let (receipt_tx, mut receipt_rx) = mpsc::channel::<(String, Receipt)>(1024);
    let mut channels: HashMap<String, Arc<Channel>> = HashMap::new();
    for (name, c) in &cfg.channels {
        match Channel::build(c) {
            Ok((ch, receipts)) => {
                if let Some(mut rx) = receipts {
                    let tx = receipt_tx.clone();
                    let name = name.clone();
                    tokio::spawn(async move {
                        while let Some(r) = rx.recv().await {
                            if tx.send((name.clone(), r)).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                channels.insert(name.clone(), Arc::new(ch));
            }
            Err(e) => {
                // Its notifications wait (retrying) rather than fail: a
                // fixed config and a restart sends them.
                tracing::error!(channel = %name, error = %e, "notification channel unusable");
                if let Some(s) = status.channels.get(name) {
                    s.healthy.store(false, Ordering::Relaxed);
                }
            }
        }
    }
    drop(receipt_tx);
    let mut breakers: HashMap<String, Breaker> = channels
        .keys()
        .map(|k| (k.clone(), Breaker::new(policy)))
        .collect();
    let sems: HashMap<String, Arc<Semaphore>> = channels
        .keys()
        .map(|k| {
            (
                k.clone(),
                Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            )
        })
        .collect();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut inflight: HashSet<String> = HashSet::new();
    let mut receipts_open = true;
    let mut early: std::collections::VecDeque<(String, Receipt, Instant)> =
        std::collections::VecDeque::new();
    let mut wake_open = true;
    let long_ago = Instant::now()
        .checked_sub(Duration::from_secs(60))
        .unwrap_or_else(Instant::now);
    let mut last_gauges = long_ago;
    let mut last_sweep = long_ago;
    // As if the last pass had been PRUNE_FIRST before the next one is due.
    let mut last_prune = Instant::now()
        .checked_sub(PRUNE_EVERY - PRUNE_FIRST)
        .unwrap_or_else(Instant::now);
    let in_flight = cfg.max_in_flight.max(1);
    tracing::info!(channels = channels.len(), "notification worker started");

    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        let mut saturated = false;
        // Per channel, only as many rows as it could take (its in-flight
        // ones included, skipped below): a backlog of thousands costs one
        // small query per free channel, not a scan per finished attempt.
        let mut due = Vec::new();
        for name in channels.keys() {
            if sems.get(name).is_some_and(|s| s.available_permits() > 0) {
                due.extend(db.due_on(name, now, in_flight).map_err(|e| e.to_string())?);
            } else {
                saturated = true;
            }
        }
        // Rows of channels that are not running (not configured, or failed
        // to build) are settled in a slower sweep.
        if last_sweep.elapsed() >= MAX_SLEEP {
            last_sweep = Instant::now();
            due.extend(
                db.due(now, BATCH)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|n| !channels.contains_key(&n.channel)),
            );
        }
        for n in due {
            if inflight.contains(&n.id) {
                continue;
            }
            let Some(ch) = channels.get(&n.channel) else {
                if cfg.channels.contains_key(&n.channel) {
                    // Configured but could not be built: wait for a fix.
                    let next =
                        policy.next_try(n.attempts + 1, n.first_attempt.unwrap_or(now), now, None);
                    record(
                        &mut db,
                        &n,
                        now,
                        Duration::ZERO,
                        next.map_or(AttemptResult::Failed, |due| AttemptResult::Retry { due }),
                        "channel could not be set up (see the log)",
                    )?;
                } else {
                    record(
                        &mut db,
                        &n,
                        now,
                        Duration::ZERO,
                        AttemptResult::Failed,
                        &format!("channel {:?} is not configured", n.channel),
                    )?;
                }
                continue;
            };
            let Some(breaker) = breakers.get_mut(&n.channel) else {
                continue;
            };
            match breaker.permit(now) {
                Permit::Send | Permit::Probe => {}
                Permit::WaitUntil(t) => {
                    db.defer(&n.id, t).map_err(|e| e.to_string())?;
                    continue;
                }
            }
            let Some(permit) = sems
                .get(&n.channel)
                .and_then(|s| s.clone().try_acquire_owned().ok())
            else {
                saturated = true;
                continue;
            };
            let msg = match render(&db, &reader, &n, &cfg.console_url) {
                Ok(m) => m,
                Err(e) => {
                    record(
                        &mut db,
                        &n,
                        now,
                        Duration::ZERO,
                        AttemptResult::Failed,
                        &format!("cannot render: {e}"),
                    )?;
                    continue;
                }
            };
            inflight.insert(n.id.clone());
            let ch = ch.clone();
            let tx = done_tx.clone();
            tokio::spawn(async move {
                let started = now_ms();
                let t = Instant::now();
                let outcome = ch.send(&msg).await;
                drop(permit);
                // The loop owns the receiver for as long as it runs.
                let _ = tx.send(Done {
                    n,
                    started,
                    latency: t.elapsed(),
                    outcome,
                });
            });
        }
        if last_gauges.elapsed() >= Duration::from_secs(5) {
            last_gauges = Instant::now();
            publish_gauges(&db, &status);
        }
        if cfg.outbox_retention_days > 0 && last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            let before = now.saturating_sub(i64::from(cfg.outbox_retention_days) * 86_400_000);
            prune(&mut db, before).await;
        }

        let sleep = if saturated {
            MAX_SLEEP
        } else {
            match db.next_due_after(now).map_err(|e| e.to_string())? {
                Some(t) => {
                    Duration::from_millis((t - now).clamp(1, MAX_SLEEP.as_millis() as i64) as u64)
                }
                None => MAX_SLEEP,
            }
        };
        tokio::select! {
            Some(d) = done_rx.recv() => {
                inflight.remove(&d.n.id);
                finish(&mut db, &policy, &mut breakers, &status, d)?;
                // Take whatever else finished before looking again.
                while let Ok(d) = done_rx.try_recv() {
                    inflight.remove(&d.n.id);
                    finish(&mut db, &policy, &mut breakers, &status, d)?;
                }
                let mut keep = std::collections::VecDeque::with_capacity(early.len());
                for (channel, r, at) in early.drain(..) {
                    if match_receipt(&mut db, &status, &channel, &r)? {
                        continue;
                    }
                    if at.elapsed() < EARLY_RECEIPT_TTL {
                        keep.push_back((channel, r, at));
                    } else {
                        tracing::debug!(message_id = %r.message_id, "receipt for an unknown message");
                    }
                }
                early = keep;
            }
            r = receipt_rx.recv(), if receipts_open => match r {
                Some((channel, r)) => {
                    if !match_receipt(&mut db, &status, &channel, &r)? {
                        // The SMSC can answer before the attempt that
                        // learnt its message id is recorded: keep it for
                        // a while and match it after the next records.
                        if early.len() >= EARLY_RECEIPTS {
                            early.pop_front();
                        }
                        early.push_back((channel, r, Instant::now()));
                    }
                }
                None => receipts_open = false,
            },
            r = wake.recv(), if wake_open => {
                if let Err(broadcast::error::RecvError::Closed) = r {
                    wake_open = false;
                }
                // Lagged or not, the outbox is the truth: just look again.
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => {}
        }
    }
    // Attempts in flight finish (each bounded by its channel's time-out) and
    // are recorded, so a clean stop resends nothing.
    drop(done_tx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !inflight.is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(d)) => {
                inflight.remove(&d.n.id);
                finish(&mut db, &policy, &mut breakers, &status, d)?;
            }
            _ => break,
        }
    }
    for (_, ch) in channels.drain() {
        if let Ok(Channel::Sms(c)) = Arc::try_unwrap(ch) {
            c.shutdown().await;
        }
    }
    tracing::info!("notification worker stopped");
    Ok(())
}

/// Matches a receipt to its notification; false when its message id is not
/// known (yet).
fn match_receipt(
    db: &mut OutboxWriter,
    status: &NotifyStatus,
    channel: &str,
    r: &Receipt,
) -> Result<bool, String> {
    let state = match &r.error {
        Some(e) if e != "000" => format!("{} err:{e}", r.state),
        _ => r.state.clone(),
    };
    match db.receipt(channel, &r.message_id, &state, now_ms()) {
        Ok(Some(id)) => {
            tracing::debug!(notification = %id, state = %state, "delivery receipt");
            if let Some(s) = status.channels.get(channel) {
                s.receipts.fetch_add(1, Ordering::Relaxed);
            }
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

fn render(
    db: &OutboxWriter,
    reader: &StoreReader,
    n: &Notification,
    console_url: &str,
) -> Result<Message, String> {
    if n.event == "digest" {
        let members = db.digest_members(&n.id).map_err(|e| e.to_string())?;
        let mut with_alerts = Vec::with_capacity(members.len());
        for m in members {
            let a = match m.alert {
                Some(id) => db.alert(id).map_err(|e| e.to_string())?,
                None => None,
            };
            with_alerts.push((m, a));
        }
        return Ok(digest_message(n, &with_alerts, console_url));
    }
    let id = n.alert.ok_or("no alert")?;
    let a = db
        .alert(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("alert {id} is gone"))?;
    // The evidence line comes from the finding; pruned findings leave the
    // alert's own summary.
    let f = match a.finding {
        Some(f) => reader.finding(f).ok().flatten(),
        None => None,
    };
    Ok(alert_message(n, &a, f.as_ref(), console_url))
}

fn record(
    db: &mut OutboxWriter,
    n: &Notification,
    started: i64,
    latency: Duration,
    result: AttemptResult,
    detail: &str,
) -> Result<(), String> {
    db.record(
        &n.id,
        started,
        latency.as_millis().min(i64::MAX as u128) as i64,
        &result,
        detail,
    )
    .map_err(|e| e.to_string())
}

fn finish(
    db: &mut OutboxWriter,
    policy: &RetryPolicy,
    breakers: &mut HashMap<String, Breaker>,
    status: &NotifyStatus,
    d: Done,
) -> Result<(), String> {
    let now = now_ms();
    let ch = &d.n.channel;
    let st = status.channels.get(ch);
    if let Some(s) = st {
        if let Some(h) = s.latency.lock().as_mut() {
            h.saturating_record(d.latency.as_micros().max(1) as u64);
        }
    }
    let (result, label) = match &d.outcome {
        Outcome::Delivered { reference, .. } => {
            if let Some(b) = breakers.get_mut(ch) {
                b.success();
            }
            if let Some(s) = st {
                s.delivered.fetch_add(1, Ordering::Relaxed);
                s.healthy.store(true, Ordering::Relaxed);
            }
            (
                AttemptResult::Delivered {
                    reference: reference.clone(),
                },
                "delivered",
            )
        }
        Outcome::Retry { detail } => {
            if let Some(b) = breakers.get_mut(ch) {
                if b.failure(now) {
                    tracing::warn!(channel = %ch, detail = %detail, "circuit opened");
                }
            }
            if let Some(s) = st {
                s.retried.fetch_add(1, Ordering::Relaxed);
                s.healthy.store(false, Ordering::Relaxed);
            }
            let first = d.n.first_attempt.unwrap_or(d.started);
            let hint = retry_after(detail).map(|r| r.as_millis().min(i64::MAX as u128) as i64);
            match policy.next_try(d.n.attempts + 1, first, now, hint) {
                Some(due) => (AttemptResult::Retry { due }, "retry"),
                None => (AttemptResult::Failed, "gave_up"),
            }
        }
        Outcome::Failed { .. } => {
            // The peer answered: the channel works, this message does not.
            if let Some(b) = breakers.get_mut(ch) {
                b.success();
            }
            if let Some(s) = st {
                s.failed.fetch_add(1, Ordering::Relaxed);
            }
            (AttemptResult::Failed, "failed")
        }
    };
    if let (Some(s), Some(b)) = (st, breakers.get(ch)) {
        *s.circuit.lock() = match b.state() {
            CircuitState::Closed => "closed",
            CircuitState::Open { .. } => "open",
            CircuitState::HalfOpen => "half_open",
        };
        metrics::gauge!("simguard_notify_circuit_open", "channel" => ch.clone()).set(
            if matches!(b.state(), CircuitState::Closed) {
                0.0
            } else {
                1.0
            },
        );
    }
    metrics::counter!("simguard_notify_attempts_total", "channel" => ch.clone(), "result" => label)
        .increment(1);
    metrics::histogram!("simguard_notify_attempt_seconds", "channel" => ch.clone())
        .record(d.latency.as_secs_f64());
    let detail = if label == "gave_up" {
        format!("{}; gave up: retries ran out", d.outcome.detail())
    } else {
        d.outcome.detail().to_string()
    };
    record(db, &d.n, d.started, d.latency, result, &detail)
}

fn publish_gauges(db: &OutboxWriter, status: &NotifyStatus) {
    match db.channel_counts() {
        Ok(counts) => {
            for c in counts {
                for (s, n) in [
                    ("pending", c.pending),
                    ("retrying", c.retrying),
                    ("sent", c.sent),
                    ("failed", c.failed),
                    ("digested", c.digested),
                ] {
                    metrics::gauge!("simguard_notify_notifications", "channel" => c.channel.clone(), "status" => s)
                        .set(n as f64);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "outbox counts unreadable"),
    }
    for (name, s) in &status.channels {
        metrics::gauge!("simguard_notify_channel_up", "channel" => name.clone()).set(
            if s.healthy.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
    }
}
