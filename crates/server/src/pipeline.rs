//! The write path: journal (group commit) -> engine -> store.
//!
//! ```text
//!  receivers --Submission--> [journal thread] --committed events--> [engine thread] --outputs--> [store sink]
//!  API, ticker ------------^        |                                      |
//!                                   +--replies--> [responder]              +--snapshot bytes--> [snapshot writer]
//! ```
//!
//! Every queue is bounded: when the journal falls behind, receivers block
//! and the kernel socket buffer absorbs the burst (backpressure instead of
//! unbounded memory). Flow records are bounded in records, not batches (see
//! [`RecordBudget`]): one flow submission can hold thousands of them.
//! Nothing is answered or applied before it is durable.

use crate::metrics::Metrics;
use parking_lot::{Condvar, Mutex, RwLock, RwLockWriteGuard};
use simguard_engine::rules::{Action, ActionKind, RuleMode, UsageLimit};
use simguard_engine::{Digits, Engine, Event, Finding, Output, Subject};
use simguard_journal::{Journal, JournalOptions};
use simguard_store::snapshots::{self, SnapshotInfo};
use simguard_store::{
    AlertChange, AlertRaise, AlertSource, DeviceRow, LocationChange, Store, StoreBatch,
};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where to send the Accounting-Response once a request is durable.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub to: SocketAddr,
    pub id: u8,
    pub auth: [u8; 16],
    /// Index into the allow-list (for the secret).
    pub client: u32,
    pub received: Instant,
    pub ticket: u64,
}

/// Work for the journal thread.
pub enum Submission {
    /// Accounting requests; `replies[i]` answers `events[i]`.
    Radius {
        events: Vec<Event>,
        replies: Vec<Reply>,
    },
    /// Changes from the API; `done` gets the last sequence once durable.
    Api {
        events: Vec<Event>,
        done: tokio::sync::oneshot::Sender<Result<u64, String>>,
    },
    /// Events that need no answer (flow batches). `permit` holds their
    /// records' room in the flow budget until the engine has applied them.
    Ingest {
        events: Vec<Event>,
        permit: Permit,
    },
    Tick(i64),
}

impl Submission {
    fn len(&self) -> usize {
        match self {
            Submission::Radius { events, .. } | Submission::Api { events, .. } => events.len(),
            Submission::Ingest { events, .. } => events.len(),
            Submission::Tick(_) => 1,
        }
    }
}

/// How much work an event is for the engine, in records: a flow batch
/// counts its flows, anything else one.
pub fn weight(ev: &Event) -> usize {
    match ev {
        Event::Flows(b) => b.flows.len().max(1),
        _ => 1,
    }
}

/// Room for flow records between the collectors and the engine: records
/// handed to the journal and not yet applied. A collector takes a [`Permit`]
/// before it submits and the engine thread drops it after applying, so when
/// the engine falls behind the collectors stop reading their sockets and the
/// kernel drops datagrams (counted in the socket's `drops`) instead of a
/// queue of batches growing without bound in memory and lag.
#[derive(Debug)]
pub struct RecordBudget {
    capacity: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl RecordBudget {
    pub fn new(capacity: usize) -> Arc<RecordBudget> {
        Arc::new(RecordBudget {
            capacity: capacity.max(1),
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Waits at most `timeout` for room for `n` records. A request larger
    /// than the whole budget is granted once nothing else is queued, so that
    /// it cannot wait forever.
    pub fn acquire(self: &Arc<Self>, n: usize, timeout: Duration) -> Option<Permit> {
        let deadline = Instant::now() + timeout;
        let mut used = self.used.lock();
        while *used > 0 && *used + n > self.capacity {
            if self.freed.wait_until(&mut used, deadline).timed_out() {
                return None;
            }
        }
        *used += n;
        Some(Permit {
            budget: Some(Arc::clone(self)),
            records: n,
        })
    }

    /// Records currently holding room.
    pub fn queued(&self) -> usize {
        *self.used.lock()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Room for some records in a [`RecordBudget`], given back when dropped.
#[derive(Debug, Default)]
pub struct Permit {
    budget: Option<Arc<RecordBudget>>,
    records: usize,
}

impl Permit {
    /// A permit that holds no room (for events outside any budget).
    pub fn none() -> Permit {
        Permit::default()
    }

    pub fn records(&self) -> usize {
        self.records
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(b) = self.budget.take() {
            let mut used = b.used.lock();
            *used = used.saturating_sub(self.records);
            drop(used);
            b.freed.notify_all();
        }
    }
}

/// Committed events on their way to the engine thread.
#[derive(Debug, Default)]
pub struct Committed {
    /// Durable events, in sequence order.
    pub events: Vec<(u64, Event)>,
    /// Sum of the events' [`weight`]s.
    pub records: usize,
    /// The flow budget's room for these events, given back once applied.
    permits: Vec<Permit>,
}

impl Committed {
    pub fn new(events: Vec<(u64, Event)>) -> Committed {
        let records = events.iter().map(|(_, e)| weight(e)).sum();
        Committed {
            events,
            records,
            permits: Vec::new(),
        }
    }
}

/// Health flags the readiness probe reports.
#[derive(Debug, Default)]
pub struct Health {
    pub journal_failed: AtomicBool,
    pub store_failed: AtomicBool,
    /// The last journal sequence whose outputs the store has committed: a
    /// client that sees it at or past the engine's knows reads are complete.
    pub store_seq: std::sync::atomic::AtomicU64,
}

/// Everything the journal thread needs besides its queues.
pub struct JournalSetup {
    pub dir: PathBuf,
    pub options: JournalOptions,
    /// Most records per group commit.
    pub max_batch: usize,
}

/// Commits what is appended, retrying a failed write and reopening a
/// journal poisoned by a failed fsync. Returns the highest sequence that is
/// durable, which may be below what was appended: those records are lost
/// (not answered, not applied) and their NASes retransmit them.
fn commit_durably(
    slot: &mut Option<Journal>,
    setup: &JournalSetup,
    metrics: &Metrics,
    health: &Health,
) -> u64 {
    let mut backoff = Duration::from_millis(10);
    loop {
        let Some(journal) = slot.as_mut() else {
            // Reopen after a poisoned fsync; the old handle (and its lock) is gone.
            match Journal::open(&setup.dir, setup.options.clone()) {
                Ok((j, rec)) => {
                    tracing::warn!(
                        last_seq = rec.last_seq,
                        "journal reopened after a failed fsync"
                    );
                    let durable = j.durable_seq();
                    *slot = Some(j);
                    return durable;
                }
                Err(e) => {
                    tracing::error!(error = %e, "journal reopen failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        };
        match journal.commit() {
            Ok(stats) => {
                metrics.journal_fsync.record(stats.fsync.as_secs_f64());
                metrics.journal_batch.record(stats.records as f64);
                metrics.journal_records.increment(stats.records);
                health.journal_failed.store(false, Ordering::Relaxed);
                return journal.durable_seq();
            }
            Err(e) => {
                metrics.journal_errors.increment(1);
                health.journal_failed.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, pending = journal.pending(), "journal commit failed");
                if journal.is_poisoned() {
                    // After a failed fsync only a reopen tells what is really on
                    // disk; dropping the handle releases the lock for it.
                    *slot = None;
                    continue;
                }
                // A failed write keeps the records pending: retry the commit.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The journal thread: group commit. Everything queued while the previous
/// fsync ran goes into the next one.
pub fn journal_loop(
    journal: Journal,
    rx: Receiver<Submission>,
    replies_tx: Sender<Vec<Reply>>,
    engine_tx: SyncSender<Committed>,
    setup: JournalSetup,
    metrics: Metrics,
    health: Arc<Health>,
) {
    let mut slot = Some(journal);
    let mut scratch = Vec::with_capacity(512);
    while let Ok(first) = rx.recv() {
        let Some(journal) = slot.as_mut() else {
            break;
        };
        let mut n = first.len();
        let mut subs = vec![first];
        while n < setup.max_batch {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.len();
                    subs.push(s);
                }
                Err(_) => break,
            }
        }
        // What was appended, with its sequence; replies carry the sequence they answer.
        let mut appended: Vec<(u64, Event)> = Vec::with_capacity(n);
        let mut replies: Vec<(u64, Reply)> = Vec::new();
        let mut api_done = Vec::new();
        let mut permits = Vec::new();
        for s in subs {
            let (events, reply_list, done) = match s {
                Submission::Radius { events, replies } => (events, Some(replies), None),
                Submission::Api { events, done } => (events, None, Some(done)),
                Submission::Ingest { events, permit } => {
                    permits.push(permit);
                    (events, None, None)
                }
                Submission::Tick(time) => (vec![Event::Tick { time }], None, None),
            };
            let mut failed = None;
            let mut seqs = Vec::with_capacity(events.len());
            for ev in events {
                let r = match &ev {
                    // The bulk of the journal: encoded straight into the commit buffer.
                    Event::Flows(batch) => journal
                        .append_with(|buf| crate::flows::encode_flow_event(batch, buf))
                        .map_err(|e| e.to_string()),
                    _ => {
                        scratch.clear();
                        ev.encode_into(&mut scratch)
                            .map_err(|e| e.to_string())
                            .and_then(|()| journal.append(&scratch).map_err(|e| e.to_string()))
                    }
                };
                match r {
                    Ok(seq) => {
                        seqs.push(Some(seq));
                        appended.push((seq, ev));
                    }
                    Err(e) => {
                        seqs.push(None);
                        failed = Some(e);
                    }
                }
            }
            if let Some(list) = reply_list {
                // A request whose append failed gets no answer: the NAS retransmits.
                replies.extend(seqs.iter().zip(list).filter_map(|(s, r)| s.map(|s| (s, r))));
            }
            if let Some(d) = done {
                match failed {
                    Some(e) => {
                        let _ = d.send(Err(format!("journal append failed: {e}")));
                    }
                    None => api_done.push((d, seqs.iter().flatten().max().copied().unwrap_or(0))),
                }
            }
        }
        let durable = commit_durably(&mut slot, &setup, &metrics, &health);
        let answered: Vec<Reply> = replies
            .into_iter()
            .filter(|(s, _)| *s <= durable)
            .map(|(_, r)| r)
            .collect();
        if !answered.is_empty() && replies_tx.send(answered).is_err() {
            tracing::error!("responder gone; accounting answers stop");
        }
        appended.retain(|(s, _)| *s <= durable);
        if !appended.is_empty() {
            let mut batch = Committed::new(appended);
            // Flows that did not become durable are dropped here, and so is their room.
            batch.permits = permits;
            if engine_tx.send(batch).is_err() {
                tracing::error!("engine thread gone");
                break;
            }
        }
        for (done, seq) in api_done {
            let r = if seq <= durable {
                Ok(seq)
            } else {
                Err("journal commit failed; nothing was written".to_string())
            };
            let _ = done.send(r);
        }
    }
    if slot.as_ref().is_some_and(|j| j.pending() > 0) {
        commit_durably(&mut slot, &setup, &metrics, &health);
    }
}

/// Messages for the store sink.
pub enum SinkMsg {
    /// Outputs of applying events up to `hi`, tagged with their event's sequence.
    Outputs {
        hi: u64,
        items: Vec<(u64, Output)>,
    },
    SnapshotWritten(SnapshotInfo),
}

/// Turns engine outputs into store batches. Also used, synchronously, by
/// recovery's replay.
pub struct SinkState {
    /// The store is complete up to here; older outputs are already in it.
    pub applied: u64,
    batch: StoreBatch,
    devices: BTreeSet<Digits>,
    tenants: BTreeSet<String>,
    groups: BTreeSet<String>,
    items: usize,
    /// Where committed findings are announced (none during recovery).
    events: Option<crate::EventHub>,
}

impl SinkState {
    pub fn new(applied: u64) -> SinkState {
        SinkState {
            applied,
            batch: StoreBatch::default(),
            devices: BTreeSet::new(),
            tenants: BTreeSet::new(),
            groups: BTreeSet::new(),
            items: 0,
            events: None,
        }
    }

    /// Announces each new finding on `hub` after the transaction holding it commits.
    pub fn with_events(mut self, hub: crate::EventHub) -> SinkState {
        self.events = Some(hub);
        self
    }

    /// Whether [`absorb`](SinkState::absorb) does anything with `o`. The
    /// engine thread drops the rest before they reach the sink: per-flow
    /// outputs (unattributed flows, policy violations) are one per record
    /// at up to millions a second, and the store keeps none of them.
    pub fn wants(o: &Output) -> bool {
        !matches!(
            o,
            Output::Unprovisioned { .. }
                | Output::WentOffline { .. }
                | Output::UnattributedFlow { .. }
                | Output::PolicyViolation { .. }
        )
    }

    pub fn absorb(&mut self, seq: u64, o: &Output) {
        if seq <= self.applied {
            return;
        }
        self.items += 1;
        match o {
            Output::Usage {
                imsi,
                hour,
                up,
                down,
            } => self.batch.add_usage(*imsi, *hour, *up, *down),
            Output::DeviceChanged { imsi } | Output::LifecycleChanged { imsi, .. } => {
                self.devices.insert(*imsi);
            }
            Output::TenantChanged { id } => {
                self.tenants.insert(id.clone());
            }
            Output::GroupChanged { id } | Output::PolicyChanged { group: id } => {
                self.groups.insert(id.clone());
            }
            Output::Unprovisioned { .. }
            | Output::WentOffline { .. }
            | Output::UnattributedFlow { .. }
            | Output::PolicyViolation { .. } => {}
            // Alerts auto-clear only when their condition ends, which the
            // engine decides: a `silent` alert when its device reports
            // again, a usage alert when the period in which the limit was
            // exceeded ends. Every other type is cleared by a person.
            Output::CameOnline { imsi, time } => {
                self.batch.alerts.push(AlertChange::DeviceOnline {
                    seq,
                    imsi: *imsi,
                    time: *time,
                });
            }
            Output::UsageBackUnder {
                imsi,
                limit,
                period_end,
                ..
            } => {
                let kind = match limit {
                    // The type `alert_of_notify` gives the rule's alerts.
                    UsageLimit::Rule(id) => format!("rule:{id}"),
                    UsageLimit::Finding(k) => k.as_str().to_string(),
                };
                self.batch.alerts.push(AlertChange::UsageBackUnder {
                    seq,
                    imsi: *imsi,
                    kind,
                    time: *period_end,
                });
            }
            // Written with the batch; announced once it has committed. Each
            // finding raises (or repeats) the alert of its type and subject.
            Output::Finding(f) => {
                self.batch
                    .alerts
                    .push(AlertChange::Raise(alert_of_finding(f)));
                self.batch.findings.push((**f).clone());
            }
            // The audit trail: written with the batch, keyed so that a
            // replay of the same journal inserts nothing twice. An enforced
            // `notify` raises the alert "rule:<id>" of its device.
            Output::Action(a) => {
                if let Some(r) = alert_of_notify(a) {
                    self.batch.alerts.push(AlertChange::Raise(r));
                }
                self.batch.actions.push((**a).clone());
            }
            Output::ActionResult(r) => self.batch.action_results.push((seq, (**r).clone())),
            // Rules live in the engine (and the journal); nothing to store.
            Output::RuleChanged { .. } => {}
            // The location trail: resolved to a position (cell table, else
            // country) by the store in the batch's transaction.
            Output::Located {
                imsi,
                time,
                network,
                cell,
            } => self.batch.locations.push(LocationChange {
                imsi: *imsi,
                time: *time,
                network: *network,
                cell: *cell,
            }),
        }
    }

    /// Marks everything up to `hi` as covered by the pending batch.
    pub fn advance(&mut self, hi: u64) {
        self.batch.seq = self.batch.seq.max(hi);
    }

    pub fn pending(&self) -> usize {
        self.items
    }

    /// Whether the pending batch changes alerts: people (and the
    /// notification worker) wait on those, so they are written within
    /// `SinkSetup::urgent` instead of the usual interval.
    pub fn urgent(&self) -> bool {
        !self.batch.alerts.is_empty()
    }

    /// Writes the pending batch (rows resolved from the current engine state).
    pub fn flush(
        &mut self,
        store: &mut Store,
        engine: &Engine,
    ) -> Result<(), simguard_store::StoreError> {
        if self.batch.seq <= self.applied {
            return Ok(());
        }
        for id in std::mem::take(&mut self.tenants) {
            if let Some(t) = engine.tenant(&id) {
                self.batch.tenants.push(t.clone());
            }
        }
        for id in std::mem::take(&mut self.groups) {
            if let Some(g) = engine.group(&id) {
                self.batch.groups.push(g.clone());
            }
        }
        for imsi in std::mem::take(&mut self.devices) {
            if let Some(row) = device_row(engine, imsi) {
                self.batch.devices.push(row);
            }
        }
        let batch = std::mem::take(&mut self.batch);
        let applied = store.apply_batch(&batch)?;
        self.applied = batch.seq;
        self.items = 0;
        if let Some(hub) = &self.events {
            hub.findings_committed(batch.findings, &applied);
            hub.alerts_committed(applied.alerts);
            // A replayed batch (skipped whole) was announced when it was
            // first written, or before any subscriber could be listening.
            if applied.written {
                announce_actions(hub, store, batch.actions, batch.action_results);
            }
        }
        Ok(())
    }
}

/// Announces the actions and results of a committed batch on the live
/// stream, each result with its action's tenant and group: from the batch
/// when the action is in it, else from the store (a point read by primary
/// key, and there is one result per enforced action: cheap enough for the
/// sink). A result whose action cannot be read is announced without a
/// tenant, so that only operator-wide callers see it, never another tenant.
fn announce_actions(
    hub: &crate::EventHub,
    store: &Store,
    actions: Vec<Action>,
    results: Vec<(u64, simguard_engine::rules::ActionResult)>,
) {
    use crate::{LiveAction, LiveResult};
    let scope_of: std::collections::HashMap<u64, (Option<String>, Option<String>)> = results
        .iter()
        .map(|(_, r)| r.action)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|id| {
            let scope = match actions.iter().find(|a| a.id == id) {
                Some(a) => (a.tenant.clone(), a.group.clone()),
                None => match store.action(id) {
                    Ok(Some(e)) => (e.action.tenant, e.action.group),
                    Ok(None) => (None, None),
                    Err(e) => {
                        tracing::warn!(error = %e, action = id, "action of a result not readable");
                        (None, None)
                    }
                },
            };
            (id, scope)
        })
        .collect();
    for a in actions {
        hub.action_committed(LiveAction::Action(Arc::new(a)));
    }
    for (seq, result) in results {
        let (tenant, group) = scope_of.get(&result.action).cloned().unwrap_or_default();
        hub.action_committed(LiveAction::Result(Arc::new(LiveResult {
            seq,
            result,
            tenant,
            group,
        })));
    }
}

/// The alert occurrence of a finding: its type, subject and severity.
fn alert_of_finding(f: &Finding) -> AlertRaise {
    let (subject_type, subject) = match &f.subject {
        Subject::Device(d) => ("device", d.to_string()),
        Subject::Cell(c) => ("cell", c.clone()),
        Subject::Network(n) => ("network", n.clone()),
        Subject::Apn(a) => ("apn", a.clone()),
    };
    AlertRaise {
        source: AlertSource::Finding(f.id),
        kind: f.kind.as_str().to_string(),
        subject_type: subject_type.to_string(),
        subject,
        imsi: f.imsi(),
        tenant: f.tenant.clone(),
        group: f.group.clone(),
        severity: Some(f.severity),
        time: f.time,
        finding: Some(f.id),
        summary: f.evidence.summary.clone(),
    }
}

/// The alert occurrence of a `notify` action (enforce mode only: a dry run
/// tells nobody). Its severity is its finding's, warning without one.
fn alert_of_notify(a: &Action) -> Option<AlertRaise> {
    if !matches!(a.kind, ActionKind::Notify) || a.mode != RuleMode::Enforce {
        return None;
    }
    let rule = a.rule.as_deref().unwrap_or("manual");
    Some(AlertRaise {
        source: AlertSource::Action(a.id),
        kind: format!("rule:{rule}"),
        subject_type: "device".into(),
        subject: a.imsi.to_string(),
        imsi: Some(a.imsi),
        tenant: a.tenant.clone(),
        group: a.group.clone(),
        severity: None,
        time: a.time,
        finding: a.finding,
        summary: a.reason.clone(),
    })
}

fn device_row(engine: &Engine, imsi: Digits) -> Option<DeviceRow> {
    let d = engine.device(imsi)?;
    let p = d.provisioning.as_ref()?;
    let syms = engine.syms();
    Some(DeviceRow {
        imsi,
        iccid: p.iccid.as_deref().map(str::to_string),
        msisdn: p.msisdn,
        bound_imei: p.bound_imei,
        tenant: syms.resolve(p.tenant).to_string(),
        group: syms.resolve(p.group).to_string(),
        lifecycle: p.lifecycle,
        label: p.label.as_deref().map(str::to_string),
    })
}

/// When to snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotPolicy {
    pub interval: Duration,
    pub dir: PathBuf,
}

/// Most records merged into one engine round (one message to the sink, one
/// publication of the applied sequence).
const ROUND_RECORDS: usize = 65_536;

/// Most records applied while holding the engine's write lock: API readers
/// wait at most this long (a few ms of flows), however large the backlog.
const LOCK_RECORDS: usize = 8_192;

/// The engine thread: applies committed events in order, publishes the
/// applied sequence, and periodically snapshots.
#[allow(clippy::too_many_arguments)]
pub fn engine_loop(
    engine: Arc<RwLock<Engine>>,
    rx: Receiver<Committed>,
    sink_tx: SyncSender<SinkMsg>,
    snap_tx: SyncSender<(u64, Vec<u8>, u64)>,
    applied: tokio::sync::watch::Sender<u64>,
    policy: SnapshotPolicy,
    metrics: Metrics,
    enforce_tx: Option<tokio::sync::mpsc::Sender<crate::enforce::EnforceJob>>,
) {
    let mut out = Vec::new();
    let mut last_snapshot = Instant::now();
    let mut round: Vec<Committed> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut records = first.records;
        round.push(first);
        while records < ROUND_RECORDS {
            match rx.try_recv() {
                Ok(more) => {
                    records += more.records;
                    round.push(more);
                }
                Err(_) => break,
            }
        }
        let mut items = Vec::new();
        let mut hi = 0;
        {
            let mut e = engine.write();
            let mut held = 0;
            for (seq, ev) in round.iter().flat_map(|c| &c.events) {
                if held >= LOCK_RECORDS {
                    // Let waiting readers (the API) in between chunks.
                    RwLockWriteGuard::bump(&mut e);
                    held = 0;
                }
                e.apply(*seq, ev, &mut out);
                held += weight(ev);
                hi = *seq;
                if let Some(tx) = &enforce_tx {
                    // Live actions only (recovery does not come this way),
                    // with the device's sessions as they are now.
                    for o in &out {
                        if let Output::Action(a) = o {
                            let received = match ev {
                                Event::Accounting(r) => r.received,
                                Event::Flows(b) => b.received,
                                _ => 0,
                            };
                            if let Some(job) = crate::enforce::job_for(&e, a, received) {
                                if tx.try_send(job).is_err() {
                                    metrics.enforce_dropped.increment(1);
                                    tracing::warn!(
                                        action = a.id,
                                        "enforcement queue full: action not sent"
                                    );
                                }
                            }
                        }
                    }
                }
                items.extend(out.drain(..).filter(SinkState::wants).map(|o| (*seq, o)));
            }
        }
        // Applied: give the flows' room back to the collectors.
        round.clear();
        metrics.engine_seq.set(hi as f64);
        applied.send_replace(hi);
        if sink_tx.send(SinkMsg::Outputs { hi, items }).is_err() {
            tracing::error!("store sink gone");
        }
        if last_snapshot.elapsed() >= policy.interval {
            last_snapshot = Instant::now();
            let e = engine.read();
            match e.encode_snapshot() {
                Ok(bytes) => {
                    let _ = snap_tx.try_send((e.seq(), bytes, e.device_count() as u64));
                }
                Err(err) => tracing::error!(error = %err, "snapshot encoding failed"),
            }
        }
    }
    // Shutdown: a final snapshot makes the next start replay nothing.
    let e = engine.read();
    match e.encode_snapshot() {
        Ok(bytes) => {
            let _ = snap_tx.send((e.seq(), bytes, e.device_count() as u64));
        }
        Err(err) => tracing::error!(error = %err, "final snapshot encoding failed"),
    }
}

/// Writes snapshot files off the engine thread, then tells the sink.
pub fn snapshot_loop(
    dir: PathBuf,
    rx: Receiver<(u64, Vec<u8>, u64)>,
    sink_tx: SyncSender<SinkMsg>,
) {
    while let Ok((seq, bytes, devices)) = rx.recv() {
        let t = Instant::now();
        match snapshots::write(&dir, seq, &bytes) {
            Ok(size) => {
                tracing::info!(
                    seq,
                    bytes = size,
                    devices,
                    ms = t.elapsed().as_millis() as u64,
                    "snapshot written"
                );
                let info = SnapshotInfo {
                    seq,
                    created_ms: crate::acct::now_ms(),
                    file: snapshots::file_name(seq),
                    bytes: size,
                    devices,
                };
                if sink_tx.send(SinkMsg::SnapshotWritten(info)).is_err() {
                    break;
                }
            }
            Err(e) => tracing::error!(error = %e, "snapshot write failed"),
        }
    }
}

/// How the store sink flushes and which snapshots it keeps.
pub struct SinkSetup {
    /// Flush at least this often: one SQLite transaction per interval.
    pub every: Duration,
    /// Flush a batch that changes alerts within this long (an alert is
    /// notified only once it is committed).
    pub urgent: Duration,
    pub snapshot_dir: PathBuf,
    /// Snapshots kept; older files are deleted once a new one is indexed.
    pub keep: usize,
}

/// The store sink: batches outputs into one transaction about every `setup.every`.
pub fn sink_loop(
    mut store: Store,
    mut state: SinkState,
    engine: Arc<RwLock<Engine>>,
    rx: Receiver<SinkMsg>,
    setup: SinkSetup,
    metrics: Metrics,
    health: Arc<Health>,
) {
    let SinkSetup {
        every,
        urgent,
        snapshot_dir,
        keep,
    } = setup;
    let mut last = Instant::now();
    let flush = |store: &mut Store, state: &mut SinkState| {
        let e = engine.read();
        match state.flush(store, &e) {
            Ok(()) => {
                metrics.store_seq.set(state.applied as f64);
                health.store_seq.store(state.applied, Ordering::Relaxed);
                health.store_failed.store(false, Ordering::Relaxed);
            }
            Err(err) => {
                health.store_failed.store(true, Ordering::Relaxed);
                tracing::error!(error = %err, "store write failed; will retry");
            }
        }
    };
    loop {
        let interval = if state.urgent() { urgent } else { every };
        let wait = interval.saturating_sub(last.elapsed());
        match rx.recv_timeout(wait) {
            Ok(SinkMsg::Outputs { hi, items }) => {
                for (seq, o) in &items {
                    state.absorb(*seq, o);
                }
                state.advance(hi);
            }
            Ok(SinkMsg::SnapshotWritten(info)) => {
                // Make the store cover the snapshot before indexing it.
                flush(&mut store, &mut state);
                if let Err(e) = store.record_snapshot(&info) {
                    tracing::error!(error = %e, "snapshot not indexed");
                }
                prune_snapshots(&mut store, &snapshot_dir, keep);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut store, &mut state);
                break;
            }
        }
        let interval = if state.urgent() { urgent } else { every };
        if last.elapsed() >= interval || state.pending() > 200_000 {
            flush(&mut store, &mut state);
            last = Instant::now();
        }
    }
}

fn prune_snapshots(store: &mut Store, dir: &std::path::Path, keep: usize) {
    let Ok(list) = store.snapshots() else { return };
    for old in list.iter().skip(keep.max(1)) {
        if snapshots::remove(dir, &old.file).is_ok() {
            let _ = store.forget_snapshot(old.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simguard_engine::{EngineOptions, FlowBatch, FlowRecord, Tenant};
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::mpsc::sync_channel;

    fn flows(n: usize) -> Event {
        let f = FlowRecord {
            start: 1_000,
            end: 2_000,
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            src_port: 1,
            dst_port: 2,
            proto: 17,
            tcp_flags: 0,
            bytes: 10,
            packets: 1,
            sampling: 1,
        };
        Event::Flows(FlowBatch {
            exporter: "x".into(),
            received: 3_000,
            flows: vec![f; n],
        })
    }

    #[test]
    fn the_budget_waits_for_room_and_grants_an_oversized_request_when_empty() {
        let b = RecordBudget::new(10);
        let a = b.acquire(6, Duration::ZERO).expect("room");
        let c = b.acquire(4, Duration::ZERO).expect("room");
        assert_eq!(b.queued(), 10);
        assert!(b.acquire(1, Duration::from_millis(20)).is_none(), "full");
        drop(a);
        assert_eq!(b.queued(), 4);
        assert!(
            b.acquire(7, Duration::from_millis(20)).is_none(),
            "4 + 7 > 10"
        );
        // A waiter is woken when room is given back.
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(8, Duration::from_secs(10)).map(|p| p.records()))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(c);
        assert_eq!(waiter.join().unwrap(), Some(8));
        assert_eq!(
            b.queued(),
            0,
            "the waiter's permit was dropped with its thread"
        );
        let big = b
            .acquire(25, Duration::ZERO)
            .expect("alone, a request may exceed the budget");
        assert!(b.acquire(1, Duration::from_millis(20)).is_none());
        drop(big);
        assert_eq!(b.queued(), 0);
    }

    #[test]
    fn weights_count_flow_records() {
        assert_eq!(weight(&flows(27)), 27);
        assert_eq!(weight(&flows(0)), 1);
        assert_eq!(weight(&Event::Tick { time: 1 }), 1);
        let c = Committed::new(vec![(1, flows(5)), (2, Event::Tick { time: 1 })]);
        assert_eq!(c.records, 6);
    }

    #[test]
    fn the_journal_hands_flows_and_their_room_to_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions::default();
        let (journal, _) = Journal::open(dir.path(), options.clone()).unwrap();
        let (tx, rx) = sync_channel(4);
        let (reply_tx, _reply_rx) = std::sync::mpsc::channel();
        let (eng_tx, eng_rx) = sync_channel(4);
        let setup = JournalSetup {
            dir: dir.path().to_path_buf(),
            options,
            max_batch: 4096,
        };
        let t = std::thread::spawn(move || {
            journal_loop(
                journal,
                rx,
                reply_tx,
                eng_tx,
                setup,
                Metrics::new(),
                Arc::new(Health::default()),
            )
        });
        let budget = RecordBudget::new(100);
        let permit = budget.acquire(30, Duration::ZERO).unwrap();
        let events = vec![flows(20), flows(10)];
        tx.send(Submission::Ingest {
            events: events.clone(),
            permit,
        })
        .unwrap();
        let c: Committed = eng_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            c.events,
            vec![(1, events[0].clone()), (2, events[1].clone())]
        );
        assert_eq!(c.records, 30);
        assert_eq!(budget.queued(), 30, "held until the engine is done");
        drop(c);
        assert_eq!(budget.queued(), 0);
        drop(tx);
        t.join().unwrap();
        // What went to the engine is exactly what was journaled.
        let mut journaled = Vec::new();
        Journal::replay(
            dir.path(),
            1,
            |seq, p| -> Result<(), simguard_journal::JournalError> {
                journaled.push((seq, Event::decode(p).unwrap()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            journaled,
            vec![(1, events[0].clone()), (2, events[1].clone())]
        );
    }

    #[test]
    fn per_flow_outputs_never_reach_the_sink() {
        let engine = Arc::new(RwLock::new(Engine::new(EngineOptions::default())));
        let (tx, rx) = sync_channel(4);
        let (sink_tx, sink_rx) = sync_channel(4);
        let (snap_tx, _snap_rx) = sync_channel(1);
        let (applied_tx, applied_rx) = tokio::sync::watch::channel(0);
        let policy = SnapshotPolicy {
            interval: Duration::from_secs(3600),
            dir: PathBuf::new(),
        };
        let t = {
            let engine = engine.clone();
            std::thread::spawn(move || {
                engine_loop(
                    engine,
                    rx,
                    sink_tx,
                    snap_tx,
                    applied_tx,
                    policy,
                    Metrics::new(),
                    None,
                )
            })
        };
        let budget = RecordBudget::new(100);
        let mut c = Committed::new(vec![
            (1, flows(3)),
            (
                2,
                Event::UpsertTenant(Tenant {
                    id: "t".into(),
                    name: "T".into(),
                }),
            ),
        ]);
        c.permits.push(budget.acquire(3, Duration::ZERO).unwrap());
        tx.send(c).unwrap();
        let Ok(SinkMsg::Outputs { hi, items }) = sink_rx.recv_timeout(Duration::from_secs(5))
        else {
            panic!("no outputs");
        };
        assert_eq!(hi, 2);
        assert_eq!(
            items,
            vec![(2, Output::TenantChanged { id: "t".into() })],
            "the three unattributed flows are dropped before the sink"
        );
        assert_eq!(engine.read().stats().flows_unattributed, 3, "but applied");
        assert_eq!(*applied_rx.borrow(), 2);
        assert_eq!(budget.queued(), 0, "room given back once applied");
        drop(tx);
        t.join().unwrap();
        assert!(SinkState::wants(&Output::TenantChanged { id: "t".into() }));
        assert!(!SinkState::wants(&Output::UnattributedFlow {
            time: 1,
            flow: match flows(1) {
                Event::Flows(b) => b.flows[0],
                _ => unreachable!(),
            },
        }));
    }
}
