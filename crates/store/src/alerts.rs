//! Alerts: what people are told about, made from findings, `notify` actions
//! and connectivity events, with a lifecycle (active, cleared;
//! acknowledged or not), comments, and a durable outbox of notifications.
//!
//! - One active alert per (subject, type): a repeat updates it (count, last
//!   time, latest finding and summary, severity raised if higher) instead of
//!   inserting a row.
//! - An alert's id is the key of the occurrence that opened it
//!   ([`AlertSource::key`]: the finding or action id, tagged), so a replay
//!   builds the same ids. Every occurrence is recorded in `alert_sources`;
//!   one seen before changes nothing (a replay is a no-op row by row, on top
//!   of the batch-level `applied_seq` guard).
//! - Auto-clear when the condition ends: a `silent` alert clears when its
//!   device reports again ([`AlertChange::DeviceOnline`], the engine's
//!   `CameOnline`); a usage alert (`rule:<id>` of a rule with a usage
//!   trigger, `declared_volume`) when the period in which the limit was
//!   exceeded ends ([`AlertChange::UsageBackUnder`], the engine's
//!   `UsageBackUnder`). Every other type is cleared by a person (the API).
//! - The outbox: an alert's `raised` and `cleared` events are routed to
//!   subscriptions (`outbox.rs`) in the same transaction as the change.
//!   Repeats, acknowledgements and comments notify nobody.

use crate::outbox::Routing;
use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, Transaction,
    TransactionBehavior,
};
use simguard_engine::{Digits, Severity};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// What an occurrence of an alert came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSource {
    /// A finding, by id.
    Finding(u64),
    /// A `notify` action, by id.
    Action(u64),
}

impl AlertSource {
    /// Finding and action ids are both `(seq << 8) | index` and can be
    /// equal, so the key tags them: `id << 1` for findings, `id << 1 | 1`
    /// for actions. The key grows with the journal sequence (`seq << 9`).
    pub fn key(self) -> u64 {
        match self {
            AlertSource::Finding(id) => id << 1,
            AlertSource::Action(id) => (id << 1) | 1,
        }
    }
}

/// One occurrence that raises (or repeats) an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRaise {
    pub source: AlertSource,
    /// The finding type, or "rule:<id>" for a `notify` action.
    pub kind: String,
    /// device, cell, network or apn.
    pub subject_type: String,
    pub subject: String,
    pub imsi: Option<Digits>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// None: the severity of `finding` as stored (warning when there is none).
    pub severity: Option<Severity>,
    /// Event time, Unix ms.
    pub time: i64,
    /// The finding behind it.
    pub finding: Option<u64>,
    pub summary: String,
}

/// An input of the alert lifecycle, in journal order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertChange {
    Raise(AlertRaise),
    /// The device reported again (journal sequence `seq`): its active
    /// `silent` alert, if raised before `seq`, clears.
    DeviceOnline {
        seq: u64,
        imsi: Digits,
        time: i64,
    },
    /// The period in which the device exceeded a usage limit ended (noticed
    /// at journal sequence `seq`): its active alert of type `kind`
    /// (`rule:<id>`, `declared_volume`), if raised before `seq`, clears.
    UsageBackUnder {
        seq: u64,
        imsi: Digits,
        kind: String,
        /// The end of the period, Unix ms: when the condition ended.
        time: i64,
    },
}

/// `cleared_by` of an alert cleared because its device reported again.
pub const CLEARED_ONLINE: &str = "auto: the device reported again";
/// `cleared_by` of a usage alert whose period ended.
pub const CLEARED_USAGE: &str = "auto: usage back under the limit (period ended)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Active,
    Cleared,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Active => "active",
            AlertState::Cleared => "cleared",
        }
    }
}

impl FromStr for AlertState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "active" => Ok(AlertState::Active),
            "cleared" => Ok(AlertState::Cleared),
            other => Err(format!("alert state {other:?} (active or cleared)")),
        }
    }
}

/// One alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: u64,
    pub kind: String,
    pub subject_type: String,
    pub subject: String,
    pub imsi: Option<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub severity: Severity,
    pub state: AlertState,
    pub acknowledged: bool,
    /// Event time of the first and latest occurrence, Unix ms.
    pub start: i64,
    pub last: i64,
    /// When it cleared.
    pub end: Option<i64>,
    pub ack_time: Option<i64>,
    pub ack_by: Option<String>,
    pub clear_time: Option<i64>,
    /// "user:<key name>" or "auto: ...".
    pub cleared_by: Option<String>,
    /// Occurrences (1 + repeats).
    pub count: u64,
    /// The latest finding behind it.
    pub finding: Option<u64>,
    /// The latest occurrence's summary.
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertComment {
    pub id: i64,
    pub alert: u64,
    /// Unix ms (wall clock).
    pub time: i64,
    pub author: String,
    pub text: String,
}

/// Which alerts a query wants. Every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub min_severity: Option<Severity>,
    /// Any of these types; empty = all.
    pub kinds: Vec<String>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<Digits>,
    pub acknowledged: Option<bool>,
    /// The caller's tenant (never tenantless alerts); None = operator-wide.
    pub scope: Option<String>,
}

impl AlertFilter {
    /// The same test as the SQL, for alerts that never went through a query.
    pub fn matches(&self, a: &Alert) -> bool {
        let tenant_is = |want: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| a.tenant.as_deref() == Some(w))
        };
        self.state.is_none_or(|s| a.state == s)
            && self.min_severity.is_none_or(|s| a.severity >= s)
            && (self.kinds.is_empty() || self.kinds.contains(&a.kind))
            && tenant_is(&self.tenant)
            && tenant_is(&self.scope)
            && self
                .group
                .as_deref()
                .is_none_or(|g| a.group.as_deref() == Some(g))
            && self
                .imsi
                .is_none_or(|i| a.imsi.as_deref() == Some(i.to_string().as_str()))
            && self.acknowledged.is_none_or(|k| a.acknowledged == k)
    }

    fn sql(&self) -> (String, Vec<Value>) {
        let mut w: Vec<String> = Vec::new();
        let mut v: Vec<Value> = Vec::new();
        if let Some(s) = self.state {
            w.push("state = ?".into());
            v.push(Value::Text(s.as_str().into()));
        }
        if let Some(min) = self.min_severity {
            let names: Vec<&str> = Severity::ALL
                .iter()
                .filter(|s| **s >= min)
                .map(|s| s.as_str())
                .collect();
            w.push(format!(
                "severity IN ({})",
                vec!["?"; names.len()].join(", ")
            ));
            v.extend(names.into_iter().map(|s| Value::Text(s.into())));
        }
        if !self.kinds.is_empty() {
            w.push(format!(
                "kind IN ({})",
                vec!["?"; self.kinds.len()].join(", ")
            ));
            v.extend(self.kinds.iter().map(|k| Value::Text(k.clone())));
        }
        for t in [&self.tenant, &self.scope].into_iter().flatten() {
            w.push("tenant = ?".into());
            v.push(Value::Text(t.clone()));
        }
        if let Some(g) = &self.group {
            w.push("group_id = ?".into());
            v.push(Value::Text(g.clone()));
        }
        if let Some(i) = self.imsi {
            w.push("imsi = ?".into());
            v.push(Value::Text(i.to_string()));
        }
        if let Some(k) = self.acknowledged {
            w.push("acknowledged = ?".into());
            v.push(Value::Integer(i64::from(k)));
        }
        if w.is_empty() {
            ("1".into(), v)
        } else {
            (w.join(" AND "), v)
        }
    }
}

/// Position in this page's newest-first order.
pub type AlertCursor = crate::page::PageCursor;

const COLUMNS: &str = "id, kind, subject_type, subject, imsi, tenant, group_id, severity, state,
    acknowledged, start, last, end_time, ack_time, ack_by, clear_time, cleared_by, count, finding, summary";

fn alert_of(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Alert, String>> {
    let id = r.get::<_, i64>(0)? as u64;
    let severity: String = r.get(7)?;
    let state: String = r.get(8)?;
    let mut a = Alert {
        id,
        kind: r.get(1)?,
        subject_type: r.get(2)?,
        subject: r.get(3)?,
        imsi: r.get(4)?,
        tenant: r.get(5)?,
        group: r.get(6)?,
        severity: Severity::Warning,
        state: AlertState::Active,
        acknowledged: r.get::<_, i64>(9)? != 0,
        start: r.get(10)?,
        last: r.get(11)?,
        end: r.get(12)?,
        ack_time: r.get(13)?,
        ack_by: r.get(14)?,
        clear_time: r.get(15)?,
        cleared_by: r.get(16)?,
        count: r.get::<_, i64>(17)? as u64,
        finding: r.get::<_, Option<i64>>(18)?.map(|f| f as u64),
        summary: r.get(19)?,
    };
    Ok((|| {
        a.severity = severity.parse()?;
        a.state = state.parse()?;
        Ok(a)
    })()
    .map_err(|e: String| format!("alert {id}: {e}")))
}

/// Routes an alert event (as the alert is now) to the outbox.
fn notify(
    tx: &Connection,
    routing: &Routing,
    id: u64,
    event: &str,
    time: i64,
) -> rusqlite::Result<()> {
    match one_tx(tx, id)? {
        Some(Ok(a)) => crate::outbox::route(tx, routing, &a, event, time),
        // A corrupt row is reported by whoever reads it; routing skips it.
        _ => Ok(()),
    }
}

pub(crate) fn one_tx(
    conn: &Connection,
    id: u64,
) -> rusqlite::Result<Option<std::result::Result<Alert, String>>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"))?
        .query_row(params![id as i64], alert_of)
        .optional()
}

/// Applies the changes in order inside the sink's transaction (after the
/// batch's findings, so a `notify` action finds its finding's severity).
/// Returns the alerts changed, in their state after the batch, in order of
/// first change.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    changes: &[AlertChange],
    routing: &Routing,
) -> rusqlite::Result<std::result::Result<Vec<Alert>, String>> {
    if changes.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    // Once per batch: the subscriptions as committed now (config + stored).
    let current = crate::outbox::current(tx, routing)?;
    let routing = &current;
    let mut changed: Vec<u64> = Vec::new();
    let mut touch = |id: u64| {
        if !changed.contains(&id) {
            changed.push(id);
        }
    };
    for c in changes {
        match c {
            AlertChange::Raise(r) => {
                if let Some(id) = raise(tx, r, routing)? {
                    touch(id);
                }
            }
            AlertChange::DeviceOnline { seq, imsi, time } => {
                for id in auto_clear(tx, routing, *seq, *imsi, "silent", *time, CLEARED_ONLINE)? {
                    touch(id);
                }
            }
            AlertChange::UsageBackUnder {
                seq,
                imsi,
                kind,
                time,
            } => {
                for id in auto_clear(tx, routing, *seq, *imsi, kind, *time, CLEARED_USAGE)? {
                    touch(id);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(changed.len());
    for id in changed {
        match one_tx(tx, id)? {
            Some(Ok(a)) => out.push(a),
            Some(Err(e)) => return Ok(Err(e)),
            None => {}
        }
    }
    Ok(Ok(out))
}

/// Clears the device's active alert of type `kind` when the condition
/// behind it ended at journal sequence `seq`, and routes its `cleared`
/// event. Only an alert whose latest occurrence came before `seq` (source
/// keys grow with the sequence: `seq << 9`): one raised again by the same
/// or a later event stands, and a replay of the batch finds nothing active
/// to clear. Returns the alerts cleared.
fn auto_clear(
    tx: &Transaction<'_>,
    routing: &Routing,
    seq: u64,
    imsi: Digits,
    kind: &str,
    time: i64,
    by: &str,
) -> rusqlite::Result<Vec<u64>> {
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM alerts WHERE subject_type = 'device' AND subject = ?1
               AND kind = ?2 AND state = 'active' AND last_source < ?3",
        )?
        .query_map(
            params![
                imsi.to_string(),
                kind,
                (seq << 9).min(i64::MAX as u64) as i64
            ],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for &id in &ids {
        tx.prepare_cached(
            "UPDATE alerts SET state = 'cleared', end_time = ?2, clear_time = ?2,
               cleared_by = ?3 WHERE id = ?1",
        )?
        .execute(params![id, time, by])?;
        notify(tx, routing, id as u64, "cleared", time)?;
    }
    Ok(ids.into_iter().map(|id| id as u64).collect())
}

/// One occurrence; returns the alert it opened or updated (None: seen before).
fn raise(tx: &Transaction<'_>, r: &AlertRaise, routing: &Routing) -> rusqlite::Result<Option<u64>> {
    let key = r.source.key().min(i64::MAX as u64) as i64;
    let seen = tx
        .prepare_cached("SELECT 1 FROM alert_sources WHERE source = ?1")?
        .query_row(params![key], |_| Ok(()))
        .optional()?
        .is_some();
    if seen {
        return Ok(None);
    }
    let severity = match (r.severity, r.finding) {
        (Some(s), _) => s,
        (None, Some(f)) => tx
            .prepare_cached("SELECT severity FROM findings WHERE id = ?1")?
            .query_row(params![f as i64], |row| row.get::<_, String>(0))
            .optional()?
            .and_then(|s| s.parse().ok())
            .unwrap_or(Severity::Warning),
        (None, None) => Severity::Warning,
    };
    let active: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, severity FROM alerts WHERE subject_type = ?1 AND subject = ?2
               AND kind = ?3 AND state = 'active'",
        )?
        .query_row(params![r.subject_type, r.subject, r.kind], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let id = match active {
        Some((id, old)) => {
            let old: Severity = old.parse().unwrap_or(Severity::Warning);
            tx.prepare_cached(
                "UPDATE alerts SET count = count + 1, last = max(last, ?2), severity = ?3,
                   finding = coalesce(?4, finding), summary = ?5, last_source = ?6 WHERE id = ?1",
            )?
            .execute(params![
                id,
                r.time,
                old.max(severity).as_str(),
                r.finding.map(|f| f as i64),
                r.summary,
                key
            ])?;
            id
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO alerts(id, kind, subject_type, subject, imsi, tenant, group_id, severity,
                   state, acknowledged, start, last, count, finding, summary, last_source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', 0, ?9, ?9, 1, ?10, ?11, ?1)",
            )?
            .execute(params![
                key,
                r.kind,
                r.subject_type,
                r.subject,
                r.imsi.map(|d| d.to_string()),
                r.tenant,
                r.group,
                severity.as_str(),
                r.time,
                r.finding.map(|f| f as i64),
                r.summary,
            ])?;
            notify(tx, routing, key as u64, "raised", r.time)?;
            key
        }
    };
    tx.prepare_cached("INSERT INTO alert_sources(source, alert) VALUES (?1, ?2)")?
        .execute(params![key, id])?;
    Ok(Some(id as u64))
}

pub(crate) type Err<'a> = crate::findings::Err<'a>;

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<std::result::Result<Alert, String>>>,
    err: &Err<'_>,
) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(err)?.map_err(StoreError::Corrupt)?);
    }
    Ok(out)
}

pub(crate) fn page(
    conn: &Connection,
    err: &Err<'_>,
    filter: &AlertFilter,
    cursor: Option<AlertCursor>,
    limit: usize,
) -> Result<Vec<Alert>> {
    let (mut w, mut v) = filter.sql();
    if let Some(c) = cursor {
        w.push_str(" AND (start, id) < (?, ?)");
        v.push(Value::Integer(c.time));
        v.push(Value::Integer(c.id.min(i64::MAX as u64) as i64));
    }
    v.push(Value::Integer(limit as i64));
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE {w} ORDER BY start DESC, id DESC LIMIT ?"
        ))
        .map_err(err)?;
    let rows = st.query_map(params_from_iter(v), alert_of).map_err(err)?;
    collect(rows, err)
}

pub(crate) fn one(conn: &Connection, err: &Err<'_>, id: u64) -> Result<Option<Alert>> {
    one_tx(conn, id)
        .map_err(err)?
        .transpose()
        .map_err(StoreError::Corrupt)
}

pub(crate) fn comments(conn: &Connection, err: &Err<'_>, alert: u64) -> Result<Vec<AlertComment>> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, alert, time, author, text FROM alert_comments WHERE alert = ?1 ORDER BY id",
        )
        .map_err(err)?;
    let rows = st
        .query_map(params![alert as i64], |r| {
            Ok(AlertComment {
                id: r.get(0)?,
                alert: r.get::<_, i64>(1)? as u64,
                time: r.get(2)?,
                author: r.get(3)?,
                text: r.get(4)?,
            })
        })
        .map_err(err)?;
    rows.collect::<std::result::Result<_, _>>().map_err(err)
}

/// What a person's change did.
#[derive(Debug, PartialEq, Eq)]
pub struct AlertUpdate {
    /// The alert after the change.
    pub alert: Alert,
    /// False when it was already in that state (acknowledged, cleared).
    pub changed: bool,
}

/// The write side of the API's alert operations (acknowledge, clear,
/// comment): its own connection, beside the sink's. Each operation is one
/// IMMEDIATE transaction, so it waits for the sink's (busy timeout) rather
/// than failing. These changes are not in the journal: SQLite is their
/// record.
pub struct AlertWriter {
    conn: Connection,
    path: PathBuf,
    /// Where a person's clear is notified (the server's subscriptions).
    routing: Arc<Routing>,
}

impl AlertWriter {
    /// Opens the store at `path`, which must exist with its schema (the
    /// server opens and migrates it at start).
    pub fn open(path: impl AsRef<Path>, routing: Arc<Routing>) -> Result<AlertWriter> {
        let path = path.as_ref().to_path_buf();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map)?;
        conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
            .map_err(map)?;
        Ok(AlertWriter {
            conn,
            path,
            routing,
        })
    }

    fn map(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn update(
        &mut self,
        id: u64,
        f: impl FnOnce(&Transaction<'_>, &Alert) -> rusqlite::Result<bool>,
    ) -> Result<Option<AlertUpdate>> {
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map)?;
        let Some(before) = one_tx(&tx, id)
            .map_err(map)?
            .transpose()
            .map_err(StoreError::Corrupt)?
        else {
            return Ok(None);
        };
        let changed = f(&tx, &before).map_err(map)?;
        let alert = one_tx(&tx, id)
            .map_err(map)?
            .transpose()
            .map_err(StoreError::Corrupt)?
            .ok_or_else(|| StoreError::Corrupt(format!("alert {id} vanished")))?;
        tx.commit().map_err(map)?;
        Ok(Some(AlertUpdate { alert, changed }))
    }

    /// Acknowledges an alert (active or cleared). None: no such alert.
    pub fn acknowledge(&mut self, id: u64, by: &str, time: i64) -> Result<Option<AlertUpdate>> {
        self.update(id, |tx, a| {
            if a.acknowledged {
                return Ok(false);
            }
            tx.execute(
                "UPDATE alerts SET acknowledged = 1, ack_time = ?2, ack_by = ?3 WHERE id = ?1",
                params![id as i64, time, by],
            )?;
            Ok(true)
        })
    }

    /// Clears an active alert, queueing its `cleared` notification in the
    /// same transaction. None: no such alert.
    pub fn clear(&mut self, id: u64, by: &str, time: i64) -> Result<Option<AlertUpdate>> {
        let routing = self.routing.clone();
        self.update(id, |tx, a| {
            if a.state == AlertState::Cleared {
                return Ok(false);
            }
            tx.execute(
                "UPDATE alerts SET state = 'cleared', end_time = ?2, clear_time = ?2, cleared_by = ?3
                 WHERE id = ?1",
                params![id as i64, time, by],
            )?;
            let current = crate::outbox::current(tx, &routing)?;
            notify(tx, &current, id, "cleared", time)?;
            Ok(true)
        })
    }

    /// Adds a comment. None: no such alert.
    pub fn comment(
        &mut self,
        id: u64,
        author: &str,
        text: &str,
        time: i64,
    ) -> Result<Option<AlertComment>> {
        let map = self.map();
        let exists = self
            .conn
            .query_row(
                "SELECT 1 FROM alerts WHERE id = ?1",
                params![id as i64],
                |_| Ok(()),
            )
            .optional()
            .map_err(&map)?
            .is_some();
        if !exists {
            return Ok(None);
        }
        self.conn
            .execute(
                "INSERT INTO alert_comments(alert, time, author, text) VALUES (?1, ?2, ?3, ?4)",
                params![id as i64, time, author, text],
            )
            .map_err(&map)?;
        Ok(Some(AlertComment {
            id: self.conn.last_insert_rowid(),
            alert: id,
            time,
            author: author.to_string(),
            text: text.to_string(),
        }))
    }
}

/// How many alerts the filter matches, by (severity, state, acknowledged):
/// the console's inbox counts without paging through every alert.
pub(crate) fn counts(
    conn: &Connection,
    err: &Err<'_>,
    filter: &AlertFilter,
) -> Result<Vec<(Severity, AlertState, bool, u64)>> {
    let (w, v) = filter.sql();
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT severity, state, acknowledged, COUNT(*) FROM alerts WHERE {w}
             GROUP BY severity, state, acknowledged"
        ))
        .map_err(err)?;
    let rows = st
        .query_map(params_from_iter(v), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? != 0,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        let (sev, state, ack, n) = r.map_err(err)?;
        out.push((
            sev.parse().map_err(StoreError::Corrupt)?,
            state.parse().map_err(StoreError::Corrupt)?,
            ack,
            n.max(0) as u64,
        ));
    }
    Ok(out)
}

/// The highest severity of the active alerts of each device the filter
/// matches (by IMSI): what the map and the device list colour devices by.
pub(crate) fn active_severity_by_imsi(
    conn: &Connection,
    err: &Err<'_>,
    filter: &AlertFilter,
) -> Result<Vec<(String, Severity)>> {
    let f = AlertFilter {
        state: Some(AlertState::Active),
        ..filter.clone()
    };
    let (w, v) = f.sql();
    // Severity names sort neither by rank nor alphabetically usefully:
    // rank them in SQL so that one row per device comes back.
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT imsi, MAX(CASE severity WHEN 'critical' THEN 3 WHEN 'major' THEN 2
                 WHEN 'minor' THEN 1 ELSE 0 END)
             FROM alerts WHERE {w} AND imsi IS NOT NULL GROUP BY imsi"
        ))
        .map_err(err)?;
    let rows = st
        .query_map(params_from_iter(v), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        let (imsi, rank) = r.map_err(err)?;
        let sev = Severity::ALL
            .get(rank.clamp(0, 3) as usize)
            .copied()
            .unwrap_or(Severity::Warning);
        out.push((imsi, sev));
    }
    Ok(out)
}
