//! simguard's adapters around the pure core: the RADIUS accounting server,
//! the journal -> engine -> store pipeline, and the HTTP API.
//!
//! [`Server::start`] recovers state (latest snapshot + journal replay), then
//! starts the threads and the HTTP server; [`Server::shutdown`] stops them in
//! dependency order so that everything answered is durable and snapshotted.

pub mod access;
pub mod acct;
pub mod api;
pub mod auth;
pub mod backtest;
pub mod clients;
pub mod coa;
pub mod config;
pub mod enforce;
pub mod flows;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod radius_map;
pub mod udp;

use crate::acct::{AcctReceiver, AcctStats};
use crate::auth::{AuthServer, AuthStats};
use crate::clients::Clients;
pub use crate::coa::{EnforceAction, EnforceOutcome, EnforceRequest, EnforceResult, Enforcer};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::{Health, SinkState, SnapshotPolicy, Submission};
use parking_lot::RwLock;
use simguard_engine::device::LivenessOptions;
use simguard_engine::{Engine, EngineOptions, Event};
use simguard_journal::{Journal, JournalOptions};
use simguard_store::{snapshots, Role, Store};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] simguard_journal::JournalError),
    #[error(transparent)]
    Store(#[from] simguard_store::StoreError),
    #[error("journal record {seq} cannot be decoded: {message}")]
    Replay { seq: u64, message: String },
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Enforcer(#[from] coa::EnforcerError),
    #[error(transparent)]
    Access(#[from] access::password::HashError),
}

/// What recovery did at start, for logs and the status API.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecoveryReport {
    pub snapshot_seq: u64,
    pub replayed: u64,
    pub journal_last_seq: u64,
    pub truncated_bytes: u64,
    pub millis: u64,
}

/// The findings of the live stream (`GET /api/v1/events`). Alerts and
/// actions have channels of their own on the [`EventHub`] (they are not
/// resumed by finding id); see [`api::findings::STREAM_VERSION`] for how the
/// wire form stays compatible.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// A finding whose store transaction has committed (a client that sees
    /// it can fetch it).
    Finding(Arc<simguard_engine::Finding>),
}

/// An entry of the audit trail on the live stream: an action (a rule's or a
/// person's, enforced or dry-run) or the network's answer to one. Shared
/// between subscribers, not copied.
#[derive(Clone, Debug)]
pub enum LiveAction {
    Action(Arc<simguard_engine::rules::Action>),
    Result(Arc<LiveResult>),
}

/// The network's answer to an action, with what the stream filters on: the
/// action's tenant and group (a result carries only the action id and IMSI,
/// and tenant scoping must not depend on where the device is now).
#[derive(Clone, Debug)]
pub struct LiveResult {
    /// Journal sequence of the answer.
    pub seq: u64,
    pub result: simguard_engine::rules::ActionResult,
    pub tenant: Option<String>,
    pub group: Option<String>,
}

/// The broadcast behind the live stream. Publishing never blocks the sink: a
/// subscriber that falls more than `capacity` events behind loses the oldest
/// and is told how many (then catches up from the store).
#[derive(Clone)]
pub struct EventHub {
    tx: tokio::sync::broadcast::Sender<LiveEvent>,
    /// Alert changes (committed), on their own channel so that finding
    /// subscribers and their resumption are unchanged.
    alerts_tx: tokio::sync::broadcast::Sender<Arc<simguard_store::Alert>>,
    /// Committed actions and the network's answers, on a third channel for
    /// the same reason (and so that a burst of them cannot push findings
    /// out of a subscriber's buffer).
    actions_tx: tokio::sync::broadcast::Sender<LiveAction>,
    closed: Arc<tokio::sync::watch::Sender<bool>>,
    pub metrics: metrics::StreamMetrics,
}

/// One subscriber: its receiver, the shutdown signal, and its place in the
/// subscriber gauge (given back when dropped).
pub struct Subscription {
    pub rx: tokio::sync::broadcast::Receiver<LiveEvent>,
    pub alerts: tokio::sync::broadcast::Receiver<Arc<simguard_store::Alert>>,
    pub actions: tokio::sync::broadcast::Receiver<LiveAction>,
    pub closed: tokio::sync::watch::Receiver<bool>,
    gauge: ::metrics::Gauge,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

impl EventHub {
    /// Events buffered for the slowest subscriber. At about 2 KB per finding
    /// (shared, not copied, between subscribers) this bounds the hub to ~8 MB.
    pub const DEFAULT_CAPACITY: usize = 4096;

    pub fn new(capacity: usize) -> EventHub {
        let (tx, _) = tokio::sync::broadcast::channel(capacity.max(1));
        let (alerts_tx, _) = tokio::sync::broadcast::channel(capacity.max(1));
        let (actions_tx, _) = tokio::sync::broadcast::channel(capacity.max(1));
        let (closed, _) = tokio::sync::watch::channel(false);
        EventHub {
            tx,
            alerts_tx,
            actions_tx,
            closed: Arc::new(closed),
            metrics: metrics::StreamMetrics::new(),
        }
    }

    pub fn subscribe(&self) -> Subscription {
        self.metrics.subscribers.increment(1.0);
        Subscription {
            rx: self.tx.subscribe(),
            alerts: self.alerts_tx.subscribe(),
            actions: self.actions_tx.subscribe(),
            closed: self.closed.subscribe(),
            gauge: self.metrics.subscribers.clone(),
        }
    }

    /// Sends to every current subscriber; returns how many there were.
    pub fn publish(&self, ev: LiveEvent) -> usize {
        // An error only means nobody listens right now: nothing to deliver.
        self.tx.send(ev).unwrap_or(0)
    }

    /// A receiver of committed alert changes only, for internal consumers
    /// (the notification worker) that are not stream subscribers.
    pub fn alert_changes(&self) -> tokio::sync::broadcast::Receiver<Arc<simguard_store::Alert>> {
        self.alerts_tx.subscribe()
    }

    /// Announces the alerts a committed batch (or an API call) changed.
    pub fn alerts_committed(&self, alerts: Vec<simguard_store::Alert>) {
        for a in alerts {
            // An error only means nobody listens right now.
            let _ = self.alerts_tx.send(Arc::new(a));
        }
    }

    /// Announces an action or a result a committed batch wrote.
    pub fn action_committed(&self, ev: LiveAction) {
        // An error only means nobody listens right now.
        let _ = self.actions_tx.send(ev);
    }

    /// Announces the findings of a batch that has just committed, those the
    /// store did not have before (a replayed finding was announced already).
    pub fn findings_committed(
        &self,
        findings: Vec<simguard_engine::Finding>,
        applied: &simguard_store::Applied,
    ) {
        self.metrics
            .findings_stored
            .increment(applied.new_findings.len() as u64);
        // The new ids are a subsequence of the batch, in batch order: one
        // pass, even for the thousands of findings of an outbreak.
        let mut new = applied.new_findings.iter().peekable();
        for f in findings {
            if new.peek() == Some(&&f.id) {
                new.next();
                self.metrics.findings_published.increment(1);
                self.publish(LiveEvent::Finding(Arc::new(f)));
            }
        }
    }

    /// Ends every stream (at shutdown: an open stream would otherwise keep
    /// the HTTP server's graceful shutdown waiting forever).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Everything the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<RwLock<Engine>>,
    pub submit: SyncSender<Submission>,
    pub applied: tokio::sync::watch::Receiver<u64>,
    pub store_path: std::path::PathBuf,
    pub store: Arc<parking_lot::Mutex<Option<simguard_store::StoreReader>>>,
    pub prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub acct_stats: Arc<AcctStats>,
    pub flow_stats: Arc<flows::FlowStats>,
    pub health: Arc<Health>,
    pub ready: Arc<AtomicBool>,
    pub recovery: RecoveryReport,
    pub started: Instant,
    /// The live stream: findings (and later alerts, actions) as they commit.
    pub events: EventHub,
    /// Subscriptions, for the API's alert writer (a person's clear is
    /// routed like the sink's changes).
    pub routing: Arc<simguard_store::Routing>,
    /// The notification channels' health and delivery counts.
    pub notify: Arc<notify::worker::NotifyStatus>,
    /// `[notify]` as configured (channels' endpoints, subscriptions).
    pub notify_config: Arc<notify::NotifyConfig>,
    /// Users, sessions and API key management.
    pub access: Arc<access::Access>,
}

/// Options that are not configuration (secrets from the environment).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Seeds an admin API key (SIMGUARD_ADMIN_TOKEN).
    pub admin_token: Option<String>,
}

pub struct Server {
    pub http_addr: SocketAddr,
    pub acct_addr: SocketAddr,
    /// Admission control (RADIUS Access-Request).
    pub auth_addr: SocketAddr,
    pub auth_stats: Arc<AuthStats>,
    /// The RFC 5176 client: CoA and Disconnect to the gateways.
    pub enforcer: Arc<Enforcer>,
    /// A token generated because the store had no API key and none was given.
    pub generated_token: Option<String>,
    pub recovery: RecoveryReport,
    pub acct_stats: Arc<AcctStats>,
    pub flow_stats: Arc<flows::FlowStats>,
    pub ipfix_addr: SocketAddr,
    pub netflow_addr: SocketAddr,
    pub engine: Arc<RwLock<Engine>>,
    /// The live stream's broadcast (findings are published by the store sink).
    pub events: EventHub,
    shutdown: Arc<AtomicBool>,
    http_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Stops the enforcement task (it holds a journal sender).
    enforce_stop: Option<tokio::sync::oneshot::Sender<()>>,
    enforce_task: Option<tokio::task::JoinHandle<()>>,
    /// Delivers notifications; stopped after the pipeline has drained.
    notify_worker: Option<notify::worker::WorkerHandle>,
    http_task: Option<tokio::task::JoinHandle<()>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

fn spawn(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<(&'static str, JoinHandle<()>), ServerError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|h| (name, h))
        .map_err(ServerError::Thread)
}

/// Loads the newest snapshot that verifies, or a fresh engine.
fn load_snapshot(store: &Store, dir: &std::path::Path, options: EngineOptions) -> Engine {
    let list = match store.snapshots() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot index unreadable; replaying the whole journal");
            return Engine::new(options);
        }
    };
    for s in list {
        match snapshots::read(dir, &s.file).and_then(|b| {
            Engine::decode_snapshot(&b)
                .map_err(|e| simguard_store::StoreError::Corrupt(e.to_string()))
        }) {
            Ok(e) => {
                if *e.options() != options {
                    tracing::warn!("engine options differ from the snapshot's; the snapshot's apply until the journal is reset");
                }
                return e;
            }
            Err(e) => {
                tracing::warn!(file = %s.file, error = %e, "snapshot unusable; trying an older one")
            }
        }
    }
    Engine::new(options)
}

impl Server {
    /// Recovers state and starts serving. Must be called inside a tokio runtime.
    pub async fn start(cfg: Config, opts: StartOptions) -> Result<Server, ServerError> {
        let t0 = Instant::now();
        let prometheus = metrics::install();
        let m = Metrics::new();
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServerError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })?;

        // Journal first: its lock guarantees a single server per data dir.
        let journal_options = JournalOptions {
            segment_bytes: cfg.journal.segment_mib.max(1) << 20,
            fsync: cfg.journal.fsync,
        };
        let (mut journal, rec) = Journal::open(cfg.journal_dir(), journal_options.clone())?;
        let mut store = Store::open(cfg.store_path())?;
        let routing = Arc::new(cfg.notify.routing());
        store.set_routing(routing.clone());
        store.set_location_retention(simguard_store::LocationRetention {
            per_device: cfg.locations.trail_points,
        });

        let mut generated_token = None;
        if let Some(t) = opts.admin_token.as_deref().filter(|t| !t.is_empty()) {
            store.add_api_key(
                "admin (SIMGUARD_ADMIN_TOKEN)",
                t,
                Role::Admin,
                None,
                acct::now_ms(),
            )?;
        } else if store.api_key_count()? == 0 && store.user_count()? == 0 {
            // Nobody could get in: print a way in (once).
            let token = api::apikeys::new_token();
            store.add_api_key(
                "admin (generated)",
                &token,
                Role::Admin,
                None,
                acct::now_ms(),
            )?;
            generated_token = Some(token);
        }

        let options = EngineOptions {
            liveness: LivenessOptions {
                default_interim_secs: cfg.engine.default_interim_secs,
                missed_interims: cfg.engine.missed_interims,
                grace_ms: i64::from(cfg.engine.grace_secs) * 1000,
            },
            detect: cfg.detection,
            ..EngineOptions::default()
        };
        let mut engine = load_snapshot(&store, &cfg.snapshot_dir(), options);
        engine.set_flow_workers(cfg.flows.engine_workers());
        let snapshot_seq = engine.seq();

        // Replay what the snapshot does not include; the store skips what it has.
        let mut sink = SinkState::new(store.applied_seq()?);
        let mut out = Vec::new();
        let mut replayed = 0u64;
        Journal::replay(
            cfg.journal_dir(),
            engine.seq() + 1,
            |seq, payload| -> Result<(), ServerError> {
                let ev = Event::decode(payload).map_err(|e| ServerError::Replay {
                    seq,
                    message: e.to_string(),
                })?;
                engine.apply(seq, &ev, &mut out);
                for o in out.drain(..) {
                    sink.absorb(seq, &o);
                }
                sink.advance(seq);
                replayed += 1;
                if sink.pending() > 200_000 {
                    sink.flush(&mut store, &engine)?;
                }
                Ok(())
            },
        )?;
        // The configuration's [[rules]], journaled when they differ from the engine's.
        api::rules::journal_config_rules(&cfg.rules, &mut journal, &mut engine, &mut sink)?;
        sink.flush(&mut store, &engine)?;
        let recovery = RecoveryReport {
            snapshot_seq,
            replayed,
            journal_last_seq: rec.last_seq,
            truncated_bytes: rec.truncated_bytes,
            millis: t0.elapsed().as_millis() as u64,
        };
        tracing::info!(
            ?recovery,
            devices = engine.device_count(),
            "state recovered"
        );

        // Sockets before threads, so that a bind error leaves nothing running.
        let acct_sock = udp::bind(
            cfg.radius.accounting_bind,
            cfg.radius.socket_receive_buffer,
            Duration::from_millis(100),
        )
        .map_err(|source| ServerError::Bind {
            what: "RADIUS accounting",
            addr: cfg.radius.accounting_bind,
            source,
        })?;
        let acct_addr = acct_sock.local_addr().map_err(|source| ServerError::Bind {
            what: "RADIUS accounting",
            addr: cfg.radius.accounting_bind,
            source,
        })?;
        let auth_sock = udp::bind(
            cfg.radius.auth_bind,
            cfg.radius.socket_receive_buffer,
            Duration::from_millis(100),
        )
        .map_err(|source| ServerError::Bind {
            what: "RADIUS authentication",
            addr: cfg.radius.auth_bind,
            source,
        })?;
        let auth_addr = auth_sock.local_addr().map_err(|source| ServerError::Bind {
            what: "RADIUS authentication",
            addr: cfg.radius.auth_bind,
            source,
        })?;
        let enforcer = Arc::new(Enforcer::new(&cfg.radius).await?);
        let bind_flow = |what: &'static str,
                         addr: SocketAddr|
         -> Result<(Arc<std::net::UdpSocket>, SocketAddr), ServerError> {
            let err = |source| ServerError::Bind { what, addr, source };
            let s = udp::bind(
                addr,
                cfg.flows.socket_receive_buffer,
                Duration::from_millis(100),
            )
            .map_err(err)?;
            let local = s.local_addr().map_err(err)?;
            Ok((Arc::new(s), local))
        };
        let (ipfix_sock, ipfix_addr) = bind_flow("IPFIX", cfg.flows.ipfix_bind)?;
        let (netflow_sock, netflow_addr) = bind_flow("NetFlow", cfg.flows.netflow_bind)?;
        let listener = tokio::net::TcpListener::bind(cfg.http.bind)
            .await
            .map_err(|source| ServerError::Bind {
                what: "HTTP",
                addr: cfg.http.bind,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            what: "HTTP",
            addr: cfg.http.bind,
            source,
        })?;
        let acct_sock = Arc::new(acct_sock);
        if cfg.radius.clients.is_empty() {
            tracing::warn!("radius.clients is empty: every accounting request will be dropped");
        }
        let clients = Arc::new(Clients::new(&cfg.radius.clients));
        let auth_mappings = coa::clients_mappings(&cfg.radius, &clients)?;

        let engine = Arc::new(RwLock::new(engine));
        let health = Arc::new(Health::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let acct_stats = Arc::new(AcctStats::default());
        let auth_stats = Arc::new(AuthStats::default());
        let flow_stats = Arc::new(flows::FlowStats::default());
        let answered = Arc::new(AtomicU64::new(0));
        let (applied_tx, applied_rx) = tokio::sync::watch::channel(engine.read().seq());

        let (sub_tx, sub_rx) = sync_channel::<Submission>(1024);
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        // Large enough to ride out a snapshot encode on the engine thread
        // (~1.5 s at a million devices) without stalling answers. Accounting
        // commits average tens of records; flow records are bounded
        // separately, in records (flows.max_queued_records).
        let (eng_tx, eng_rx) = sync_channel(16_384);
        let (sink_tx, sink_rx) = sync_channel(256);
        let (snap_tx, snap_rx) = sync_channel(1);
        let mut threads = Vec::new();

        let events = EventHub::new(EventHub::DEFAULT_CAPACITY);
        let sink_state = SinkState::new(store.applied_seq()?).with_events(events.clone());
        {
            let (engine, m, health) = (engine.clone(), m.clone(), health.clone());
            let setup = pipeline::SinkSetup {
                every: Duration::from_secs(1),
                urgent: Duration::from_millis(10),
                snapshot_dir: cfg.snapshot_dir(),
                keep: cfg.engine.snapshot_keep,
            };
            threads.push(spawn("sg-store", move || {
                pipeline::sink_loop(store, sink_state, engine, sink_rx, setup, m, health)
            })?);
        }
        {
            let (dir, sink_tx) = (cfg.snapshot_dir(), sink_tx.clone());
            threads.push(spawn("sg-snapshot", move || {
                pipeline::snapshot_loop(dir, snap_rx, sink_tx)
            })?);
        }
        // Actions the engine decides in enforce mode go to the network
        // (CoA / Disconnect) from this task; its answers come back through
        // the journal.
        let (enforce_tx, enforce_rx) = tokio::sync::mpsc::channel(enforce::QUEUE);
        let (enforce_stop, enforce_stop_rx) = tokio::sync::oneshot::channel();
        let enforce_task = tokio::spawn(enforce::run(
            enforcer.clone(),
            enforce_rx,
            sub_tx.clone(),
            m.clone(),
            enforce_stop_rx,
        ));
        {
            let (engine, m) = (engine.clone(), m.clone());
            let policy = SnapshotPolicy {
                interval: Duration::from_secs(cfg.engine.snapshot_interval_secs.max(1)),
                dir: cfg.snapshot_dir(),
            };
            threads.push(spawn("sg-engine", move || {
                pipeline::engine_loop(
                    engine,
                    eng_rx,
                    sink_tx,
                    snap_tx,
                    applied_tx,
                    policy,
                    m,
                    Some(enforce_tx),
                )
            })?);
        }
        {
            let (sock, clients, answered, m, stats) = (
                acct_sock.clone(),
                clients.clone(),
                answered.clone(),
                m.clone(),
                acct_stats.clone(),
            );
            threads.push(spawn("sg-responder", move || {
                acct::responder(sock, clients, reply_rx, answered, m, stats)
            })?);
        }
        {
            let (m, health) = (m.clone(), health.clone());
            let setup = pipeline::JournalSetup {
                dir: cfg.journal_dir(),
                options: journal_options,
                max_batch: cfg.journal.max_batch,
            };
            threads.push(spawn("sg-journal", move || {
                pipeline::journal_loop(journal, sub_rx, reply_tx, eng_tx, setup, m, health)
            })?);
        }
        {
            let a = AuthServer {
                sock: Arc::new(auth_sock),
                clients: clients.clone(),
                mappings: auth_mappings,
                engine: engine.clone(),
                policy: simguard_engine::admission::AdmissionPolicy {
                    reject_unprovisioned: cfg.radius.reject_unprovisioned,
                },
                metrics: metrics::AuthMetrics::new(),
                stats: auth_stats.clone(),
                shutdown: shutdown.clone(),
            };
            threads.push(spawn("sg-auth", move || a.run())?);
        }
        {
            let r = AcctReceiver {
                sock: acct_sock,
                clients,
                tx: sub_tx.clone(),
                metrics: m.clone(),
                stats: acct_stats.clone(),
                answered,
                duplicate_window: Duration::from_secs(cfg.radius.duplicate_window_secs),
                shutdown: shutdown.clone(),
            };
            threads.push(spawn("sg-acct-recv", move || r.run())?);
        }
        if cfg.flows.exporters.is_empty() {
            tracing::warn!("flows.exporters is empty: every flow export will be dropped");
        }
        let exporters = Arc::new(flows::Exporters::new(&cfg.flows.exporters));
        // Flow records between the collectors and the engine, shared by both sockets.
        let flow_budget = pipeline::RecordBudget::new(cfg.flows.max_queued_records);
        for (name, thread, sock, file) in [
            ("ipfix", "sg-ipfix", ipfix_sock, "flow-templates-ipfix.bin"),
            (
                "netflow",
                "sg-netflow",
                netflow_sock,
                "flow-templates-netflow.bin",
            ),
        ] {
            let c = flows::FlowCollector {
                name,
                sock,
                exporters: exporters.clone(),
                tx: sub_tx.clone(),
                stats: flow_stats.clone(),
                shutdown: shutdown.clone(),
                state_file: cfg.data_dir.join(file),
                pending_template: Duration::from_secs(cfg.flows.pending_template_secs),
                commit_records: cfg.flows.commit_records,
                commit_interval: Duration::from_millis(cfg.flows.commit_interval_ms),
                budget: flow_budget.clone(),
            };
            threads.push(spawn(thread, move || c.run())?);
        }

        let ticker = (cfg.engine.tick_ms > 0).then(|| {
            let (tx, shutdown, every) = (sub_tx.clone(), shutdown.clone(), cfg.engine.tick_ms);
            tokio::spawn(async move {
                let mut iv = tokio::time::interval(Duration::from_millis(every));
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    iv.tick().await;
                    if shutdown.load(Ordering::Relaxed) {
                        break;
                    }
                    // A full queue means the journal is busy with traffic whose
                    // own times move the clock; skipping a tick loses nothing.
                    if let Err(std::sync::mpsc::TrySendError::Disconnected(_)) =
                        tx.try_send(Submission::Tick(acct::now_ms()))
                    {
                        break;
                    }
                }
            })
        });

        // Notifications: the worker sends what the store routed to the
        // outbox (only when a channel is configured).
        let notify_status = Arc::new(notify::worker::NotifyStatus::new(&cfg.notify));
        let notify_worker = if cfg.notify.channels.is_empty() {
            None
        } else {
            Some(
                notify::worker::spawn(
                    cfg.notify.clone(),
                    cfg.store_path(),
                    events.alert_changes(),
                    notify_status.clone(),
                )
                .map_err(ServerError::Thread)?,
            )
        };

        let ready = Arc::new(AtomicBool::new(true));
        let access = Arc::new(access::Access::new(
            cfg.store_path(),
            access::SessionPolicy::from_config(&cfg.http),
        )?);
        let state = AppState {
            engine: engine.clone(),
            submit: sub_tx,
            applied: applied_rx,
            store_path: cfg.store_path(),
            store: Arc::new(parking_lot::Mutex::new(None)),
            prometheus,
            acct_stats: acct_stats.clone(),
            flow_stats: flow_stats.clone(),
            health,
            ready,
            recovery: recovery.clone(),
            started: Instant::now(),
            events: events.clone(),
            routing,
            notify: notify_status.clone(),
            notify_config: Arc::new(cfg.notify.clone()),
            access,
        };
        let (http_shutdown, http_rx) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(state);
        let http_task = tokio::spawn(async move {
            // Connection info: the client address for the login back-off.
            let r = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = http_rx.await;
            })
            .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });

        Ok(Server {
            http_addr,
            acct_addr,
            auth_addr,
            auth_stats,
            enforcer,
            generated_token,
            recovery,
            acct_stats,
            flow_stats,
            ipfix_addr,
            netflow_addr,
            engine,
            events,
            shutdown,
            http_shutdown: Some(http_shutdown),
            enforce_stop: Some(enforce_stop),
            enforce_task: Some(enforce_task),
            notify_worker,
            http_task: Some(http_task),
            ticker,
            threads,
        })
    }

    /// Stops accepting, drains the pipeline, snapshots, and joins every thread.
    pub async fn shutdown(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(tx) = self.http_shutdown.take() {
            let _ = tx.send(());
        }
        self.events.close();
        if let Some(t) = self.http_task.take() {
            let _ = t.await;
        }
        if let Some(t) = self.ticker.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(tx) = self.enforce_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.enforce_task.take() {
            let _ = t.await;
        }
        let threads = std::mem::take(&mut self.threads);
        let notify_worker = self.notify_worker.take();
        let _ = tokio::task::spawn_blocking(move || {
            // Order matters only loosely: each thread ends when its input
            // channel closes, which cascades from the receiver down.
            for (name, h) in threads {
                if h.join().is_err() {
                    tracing::error!(thread = name, "thread panicked");
                }
            }
            // Last: what the final store batch routed can still go out.
            if let Some(w) = notify_worker {
                w.stop();
            }
        })
        .await;
    }
}
