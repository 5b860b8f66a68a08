//! The embedded store (SQLite): what must outlive the process besides the
//! journal, and what people query by time.
//!
//! - inventory (tenants, groups, devices), materialised from engine outputs;
//! - usage rolled up per device and hour;
//! - engine snapshots (files, indexed here);
//! - API keys, users and their sessions (`users.rs`, [`AccessStore`]);
//! - findings of detection, with their evidence (bounded by [`FindingsRetention`]);
//! - the audit trail of automatic response: actions and the network's
//!   answers to them (`audit.rs`, append-only, never pruned);
//! - alerts, their comments, and the outbox of notifications (`alerts.rs`);
//! - notification subscriptions stored through the API (`subscriptions.rs`);
//! - cell positions (`cells.rs`, imported) and each device's location trail
//!   and newest position (`locations.rs`).
//!
//! Writes come from one sink thread in batches, each batch one transaction
//! that also records the journal sequence it covers (`applied_seq`). A replay
//! after a crash skips what the store already has, so roll-ups are counted
//! exactly once.

mod alerts;
mod audit;
mod cells;
mod findings;
mod locations;
mod migrations;
pub mod outbox;
mod page;
pub mod snapshots;
pub mod subscriptions;
mod users;

pub use alerts::{
    Alert, AlertChange, AlertComment, AlertCursor, AlertFilter, AlertRaise, AlertSource,
    AlertState, AlertUpdate, AlertWriter, CLEARED_ONLINE, CLEARED_USAGE,
};
pub use audit::{AuditCursor, AuditEntry, AuditFilter, StoredResult};
pub use cells::{CellImport, CellRow, Radio};
pub use findings::{FindingCounts, FindingCursor, FindingFilter, FindingsAfter, FindingsRetention};
pub use locations::{LocationChange, LocationPoint, LocationRetention, MapPoint};
pub use outbox::{
    Attempt, AttemptResult, ChannelCounts, Notification, OutboxWriter, QuietHours, Routing,
    Subscription, UNROUTED_CHANNEL,
};
pub use page::PageCursor;
pub use subscriptions::{Created, StoredSubscription, SubscriptionWriter};
pub use users::{AccessStore, ApiKeyInfo, Credentials, SessionRecord, User};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use simguard_engine::rules::{Action, ActionResult};
use simguard_engine::{DeclaredProfile, Digits, Finding, Group, Lifecycle, Tenant};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {path} has schema version {found}, newer than this build understands ({known}); upgrade simguard")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("snapshot {path}: {source}")]
    SnapshotIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One device's inventory row, as written from engine state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub imsi: Digits,
    pub iccid: Option<String>,
    pub msisdn: Option<Digits>,
    pub bound_imei: Option<Digits>,
    pub tenant: String,
    pub group: String,
    pub lifecycle: Lifecycle,
    pub label: Option<String>,
}

/// Everything one sink flush writes, in one transaction.
#[derive(Default, Debug)]
pub struct StoreBatch {
    /// Highest journal sequence whose effects this batch completes.
    pub seq: u64,
    /// (IMSI, hour start ms) -> (up, down) octets to add.
    pub usage: HashMap<(Digits, i64), (u64, u64)>,
    pub devices: Vec<DeviceRow>,
    pub tenants: Vec<Tenant>,
    pub groups: Vec<Group>,
    /// Findings, in journal order. Ids already stored are ignored.
    pub findings: Vec<Finding>,
    /// Decided actions (the audit trail), in journal order. Ids already
    /// stored are ignored.
    pub actions: Vec<Action>,
    /// The network's answers to enforced actions, with the journal sequence
    /// of each. (action, seq) pairs already stored are ignored.
    pub action_results: Vec<(u64, ActionResult)>,
    /// Alert raises, repeats and auto-clears, in journal order (applied
    /// after the findings). Occurrences already stored are ignored.
    pub alerts: Vec<AlertChange>,
    /// Changes of serving network or cell, in journal order: resolved to
    /// positions and added to the trails.
    pub locations: Vec<LocationChange>,
}

impl StoreBatch {
    pub fn is_empty(&self) -> bool {
        self.usage.is_empty()
            && self.devices.is_empty()
            && self.tenants.is_empty()
            && self.groups.is_empty()
            && self.findings.is_empty()
            && self.actions.is_empty()
            && self.action_results.is_empty()
            && self.alerts.is_empty()
            && self.locations.is_empty()
    }

    pub fn add_usage(&mut self, imsi: Digits, hour: i64, up: u64, down: u64) {
        let e = self.usage.entry((imsi, hour)).or_default();
        e.0 += up;
        e.1 += down;
    }
}

/// One hour of a device's usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UsagePoint {
    /// Start of the hour, Unix ms.
    pub hour: i64,
    pub up: u64,
    pub down: u64,
}

/// Roles of API keys and users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Whether this role may do what needs `min`: a viewer reads, an
    /// operator also acts on devices and alerts, an admin also manages.
    pub fn at_least(self, min: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        };
        rank(self) >= rank(min)
    }
}

/// An API key as the authenticator sees it (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// None = operator-wide (sees every tenant).
    pub tenant: Option<String>,
}

/// SHA-256 of a bearer token: keys are looked up by hash so a store leak does
/// not leak usable tokens.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What [`Store::apply_batch`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// False when the batch was at or below `applied_seq` (a replay) and skipped whole.
    pub written: bool,
    /// Ids of the batch's findings that were not stored before, in batch order.
    pub new_findings: Vec<u64>,
    /// Findings deleted by the retention policy in the same transaction.
    pub pruned_findings: u64,
    /// Actions of the batch that were not stored before.
    pub new_actions: u64,
    /// Alerts the batch raised, updated or cleared, as they are after it.
    pub alerts: Vec<Alert>,
    /// Points added to location trails.
    pub located: u64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    retention: FindingsRetention,
    trail: LocationRetention,
    /// Rows in `findings`, counted once at open and kept up to date by
    /// `apply_batch`, so that retention needs no `count(*)` per batch.
    finding_rows: u64,
    /// Subscriptions that alert changes are routed to.
    routing: std::sync::Arc<Routing>,
}

impl Store {
    /// Opens (creating and migrating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(map)?;
        // WAL: readers (the API) never block the sink's writes. NORMAL is
        // durable enough here because the journal, not SQLite, is the record
        // of truth: anything lost is rebuilt by replay past `applied_seq`.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(map)?;
        migrations::migrate(&mut conn, &path)?;
        let finding_rows = findings::count(&conn).map_err(map)?;
        Ok(Store {
            conn,
            path,
            retention: FindingsRetention::default(),
            trail: LocationRetention::default(),
            finding_rows,
            routing: Default::default(),
        })
    }

    /// A read-only connection for query handlers.
    pub fn open_reader(path: impl AsRef<Path>) -> Result<StoreReader> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                source,
            })?;
        Ok(StoreReader { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal sequence up to which the store is complete.
    pub fn applied_seq(&self) -> Result<u64> {
        meta_u64(&self.conn, "applied_seq").map_err(self.err())
    }

    /// Sets how many findings are kept (applied from the next batch on).
    pub fn set_findings_retention(&mut self, r: FindingsRetention) {
        self.retention = r;
    }

    /// Sets the subscriptions alert changes are routed to (from the next
    /// batch on).
    pub fn set_routing(&mut self, routing: std::sync::Arc<Routing>) {
        self.routing = routing;
    }

    pub fn findings_retention(&self) -> FindingsRetention {
        self.retention
    }

    /// Sets how much of each location trail is kept (from the next batch on).
    pub fn set_location_retention(&mut self, r: LocationRetention) {
        self.trail = r;
    }

    /// Writes a batch and its sequence atomically. Batches at or below
    /// `applied_seq` were already written (a replay) and are skipped whole.
    pub fn apply(&mut self, batch: &StoreBatch) -> Result<bool> {
        self.apply_batch(batch).map(|a| a.written)
    }

    /// [`Store::apply`], telling which findings were new: only those
    /// committed here may be announced (after this returns).
    pub fn apply_batch(&mut self, batch: &StoreBatch) -> Result<Applied> {
        if batch.seq <= self.applied_seq()? {
            return Ok(Applied::default());
        }
        let mut applied = Applied {
            written: true,
            ..Applied::default()
        };
        let retention = self.retention;
        let trail = self.trail;
        let rows_before = self.finding_rows;
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // IMMEDIATE: the API's alert writer is a second writer; a deferred
        // transaction that read first could fail with SQLITE_BUSY_SNAPSHOT
        // instead of waiting for it.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map)?;
        {
            let mut t = tx
                .prepare_cached("INSERT INTO tenants(id, name) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET name = excluded.name")
                .map_err(map)?;
            for x in &batch.tenants {
                t.execute(params![x.id, x.name]).map_err(map)?;
            }
            let mut g = tx
                .prepare_cached("INSERT INTO device_groups(id, tenant, name, profile) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET tenant = excluded.tenant, name = excluded.name, profile = excluded.profile")
                .map_err(map)?;
            for x in &batch.groups {
                let profile = serde_json::to_string(&ProfileJson::from(&x.profile))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                g.execute(params![x.id, x.tenant, x.name, profile])
                    .map_err(map)?;
            }
            let mut d = tx
                .prepare_cached(
                    "INSERT INTO devices(imsi, iccid, msisdn, bound_imei, tenant, group_id, lifecycle, label)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(imsi) DO UPDATE SET iccid = excluded.iccid, msisdn = excluded.msisdn,
                       bound_imei = excluded.bound_imei, tenant = excluded.tenant, group_id = excluded.group_id,
                       lifecycle = excluded.lifecycle, label = excluded.label",
                )
                .map_err(map)?;
            for x in &batch.devices {
                d.execute(params![
                    x.imsi.to_string(),
                    x.iccid,
                    x.msisdn.map(|m| m.to_string()),
                    x.bound_imei.map(|m| m.to_string()),
                    x.tenant,
                    x.group,
                    x.lifecycle.as_str(),
                    x.label
                ])
                .map_err(map)?;
            }
            let mut u = tx
                .prepare_cached(
                    "INSERT INTO usage_hourly(imsi, hour, up, down) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(imsi, hour) DO UPDATE SET up = up + excluded.up, down = down + excluded.down",
                )
                .map_err(map)?;
            for ((imsi, hour), (up, down)) in &batch.usage {
                u.execute(params![
                    imsi.packed() as i64,
                    hour,
                    *up as i64,
                    *down as i64
                ])
                .map_err(map)?;
            }
            applied.new_findings = findings::insert(&tx, &batch.findings).map_err(map)?;
            applied.new_actions =
                audit::insert(&tx, &batch.actions, &batch.action_results).map_err(map)?;
            applied.alerts = alerts::apply(&tx, &batch.alerts, &self.routing)
                .map_err(map)?
                .map_err(StoreError::Corrupt)?;
            applied.located = locations::apply(&tx, &batch.locations, trail).map_err(map)?;
            if let Some(newest) = batch.findings.iter().map(|f| f.time).max() {
                let rows = rows_before + applied.new_findings.len() as u64;
                applied.pruned_findings =
                    findings::prune(&tx, retention, newest, rows).map_err(map)?;
            }
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('applied_seq', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![batch.seq as i64],
            )
            .map_err(map)?;
        }
        tx.commit().map_err(map)?;
        self.finding_rows = (rows_before + applied.new_findings.len() as u64)
            .saturating_sub(applied.pruned_findings);
        Ok(applied)
    }

    /// Rows in the findings table.
    pub fn finding_rows(&self) -> u64 {
        self.finding_rows
    }

    // ---- API keys ----

    /// API keys not revoked.
    pub fn api_key_count(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM api_keys WHERE revoked IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// Users who can log in.
    pub fn user_count(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// Stores a key (by hash). Adding the same token twice is a no-op, and
    /// a revoked token stays revoked.
    pub fn add_api_key(
        &mut self,
        name: &str,
        token: &str,
        role: Role,
        tenant: Option<&str>,
        created_ms: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO api_keys(name, token_hash, role, tenant, created) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(token_hash) DO NOTHING",
                params![name, token_hash(token).to_vec(), role.as_str(), tenant, created_ms],
            )
            .map_err(self.err())?;
        Ok(())
    }

    // ---- snapshots ----

    pub fn record_snapshot(&mut self, s: &snapshots::SnapshotInfo) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO snapshots(seq, created, file, bytes, devices) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    s.seq as i64,
                    s.created_ms,
                    s.file,
                    s.bytes as i64,
                    s.devices as i64
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Newest first.
    pub fn snapshots(&self) -> Result<Vec<snapshots::SnapshotInfo>> {
        let mut st = self
            .conn
            .prepare("SELECT seq, created, file, bytes, devices FROM snapshots ORDER BY seq DESC")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(snapshots::SnapshotInfo {
                    seq: r.get::<_, i64>(0)? as u64,
                    created_ms: r.get(1)?,
                    file: r.get(2)?,
                    bytes: r.get::<_, i64>(3)? as u64,
                    devices: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    pub fn forget_snapshot(&mut self, seq: u64) -> Result<()> {
        self.conn
            .execute("DELETE FROM snapshots WHERE seq = ?1", params![seq as i64])
            .map_err(self.err())?;
        Ok(())
    }

    /// One action by id, with its results: for the sink, which announces a
    /// result with its action's tenant when the action was in an earlier batch.
    pub fn action(&self, id: u64) -> Result<Option<AuditEntry>> {
        audit::one(&self.conn, &self.err(), id)
    }
}

/// Read side, one per query-serving thread.
pub struct StoreReader {
    conn: Connection,
    path: PathBuf,
}

impl StoreReader {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Hourly usage of one device in [from, to), oldest first.
    pub fn usage(&self, imsi: Digits, from: i64, to: i64) -> Result<Vec<UsagePoint>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT hour, up, down FROM usage_hourly WHERE imsi = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![imsi.packed() as i64, from, to], |r| {
                Ok(UsagePoint {
                    hour: r.get(0)?,
                    up: r.get::<_, i64>(1)? as u64,
                    down: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    pub fn find_api_key(&self, token: &str) -> Result<Option<ApiKey>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, name, role, tenant FROM api_keys WHERE token_hash = ?1 AND revoked IS NULL",
                params![token_hash(token).to_vec()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.err())?;
        match row {
            None => Ok(None),
            Some((id, name, role, tenant)) => Ok(Some(ApiKey {
                id,
                name,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("api key {id}: role {role:?}")))?,
                tenant,
            })),
        }
    }

    pub fn applied_seq(&self) -> Result<u64> {
        meta_u64(&self.conn, "applied_seq").map_err(self.err())
    }

    // ---- findings ----

    /// Findings newest first (event time, then id), after `cursor`, at most `limit`.
    pub fn findings(
        &self,
        filter: &FindingFilter,
        cursor: Option<FindingCursor>,
        limit: usize,
    ) -> Result<Vec<Finding>> {
        findings::page(&self.conn, &self.err(), filter, cursor, limit)
    }

    pub fn finding(&self, id: u64) -> Result<Option<Finding>> {
        findings::one(&self.conn, &self.err(), id)
    }

    /// Findings committed after the one with id `after` (ids grow with the
    /// journal), the newest `limit` of them, oldest first, and how many older
    /// ones the limit left out.
    pub fn findings_after(
        &self,
        filter: &FindingFilter,
        after: u64,
        limit: usize,
    ) -> Result<FindingsAfter> {
        findings::after(&self.conn, &self.err(), filter, after, limit)
    }

    /// The highest finding id stored (0 when none): where a new live-stream
    /// subscriber starts.
    pub fn newest_finding_id(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM findings", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(self.err())
    }

    // ---- audit trail ----

    /// Actions newest first (event time, then id), after `cursor`, at most
    /// `limit`, each with the network's answers to it.
    pub fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<AuditCursor>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        audit::page(&self.conn, &self.err(), filter, cursor, limit)
    }

    /// One action by id, with its results.
    pub fn action(&self, id: u64) -> Result<Option<AuditEntry>> {
        audit::one(&self.conn, &self.err(), id)
    }

    /// Rows in the actions and action results tables.
    pub fn audit_rows(&self) -> Result<(u64, u64)> {
        audit::count(&self.conn, &self.err())
    }

    // ---- alerts ----

    /// Alerts newest first (start time, then id), after `cursor`, at most `limit`.
    pub fn alerts(
        &self,
        filter: &AlertFilter,
        cursor: Option<AlertCursor>,
        limit: usize,
    ) -> Result<Vec<Alert>> {
        alerts::page(&self.conn, &self.err(), filter, cursor, limit)
    }

    pub fn alert(&self, id: u64) -> Result<Option<Alert>> {
        alerts::one(&self.conn, &self.err(), id)
    }

    /// An alert's comments, oldest first.
    pub fn alert_comments(&self, alert: u64) -> Result<Vec<AlertComment>> {
        alerts::comments(&self.conn, &self.err(), alert)
    }

    /// Notifications in the outbox (of one alert, or all), oldest first.
    pub fn outbox(&self, alert: Option<u64>) -> Result<Vec<Notification>> {
        outbox::notifications_of(&self.conn, alert).map_err(self.err())
    }

    /// One notification and its attempts.
    pub fn notification(&self, id: &str) -> Result<Option<(Notification, Vec<Attempt>)>> {
        let Some(n) = outbox::notification(&self.conn, id).map_err(self.err())? else {
            return Ok(None);
        };
        let a = outbox::attempts(&self.conn, id).map_err(self.err())?;
        Ok(Some((n, a)))
    }

    /// The attempts of a notification, oldest first.
    pub fn attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        outbox::attempts(&self.conn, id).map_err(self.err())
    }

    /// The notifications folded into a digest.
    pub fn digest_members(&self, digest: &str) -> Result<Vec<Notification>> {
        outbox::digest_members(&self.conn, digest).map_err(self.err())
    }

    /// The subscriptions stored through the API, by name.
    pub fn subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        subscriptions::all(&self.conn).map_err(self.err())?
    }

    /// Notifications per channel and status.
    pub fn channel_counts(&self) -> Result<Vec<ChannelCounts>> {
        outbox::channel_counts(&self.conn).map_err(self.err())
    }

    /// Alerts the filter matches, counted by (severity, state, acknowledged).
    pub fn alert_counts(
        &self,
        filter: &AlertFilter,
    ) -> Result<Vec<(simguard_engine::Severity, AlertState, bool, u64)>> {
        alerts::counts(&self.conn, &self.err(), filter)
    }

    /// The highest active alert severity of each device (IMSI) the filter matches.
    pub fn active_alert_severity_by_imsi(
        &self,
        filter: &AlertFilter,
    ) -> Result<Vec<(String, simguard_engine::Severity)>> {
        alerts::active_severity_by_imsi(&self.conn, &self.err(), filter)
    }

    /// Counts by kind and severity of the findings the filter matches.
    pub fn finding_counts(&self, filter: &FindingFilter) -> Result<FindingCounts> {
        findings::counts(&self.conn, &self.err(), filter)
    }
}

fn meta_u64(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .unwrap_or(0) as u64)
}

/// The declared profile as stored (JSON, readable by people and SQL tools).
#[derive(Serialize)]
struct ProfileJson {
    max_bytes_per_day: Option<u64>,
    report_interval_secs: Option<u32>,
    active_hours: Option<(u8, u8)>,
    allowed_countries: Vec<String>,
    allowed_networks: Vec<String>,
    allowed_rats: Vec<u8>,
    imei_lock: bool,
}

impl From<&DeclaredProfile> for ProfileJson {
    fn from(p: &DeclaredProfile) -> Self {
        ProfileJson {
            max_bytes_per_day: p.max_bytes_per_day,
            report_interval_secs: p.report_interval_secs,
            active_hours: p.active_hours,
            allowed_countries: p.allowed_countries.clone(),
            allowed_networks: p.allowed_networks.iter().map(|n| n.to_string()).collect(),
            allowed_rats: p.allowed_rats.clone(),
            imei_lock: p.imei_lock,
        }
    }
}
