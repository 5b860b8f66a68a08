//! The audit trail of automatic response: every action the engine decided
//! (a rule's or a person's, enforced or dry-run) and every answer the
//! network gave to an enforced one.
//!
//! Both tables are append-only. Actions are keyed by the engine's
//! deterministic id ((journal seq << 8) | index) and results by (action id,
//! journal seq of the result), so a replay that produces the same rows again
//! inserts nothing (INSERT OR IGNORE). Nothing is ever updated or pruned
//! here: the trail is the record of who did what and why.

use crate::findings::Err;
use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row, Transaction};
use simguard_engine::rules::{Action, ActionKind, ActionResult, RuleMode};
use simguard_engine::{Digits, Lifecycle};

/// Which actions a query wants. Every field narrows; the default matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub imsi: Option<Digits>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// Exact actor: "user:alice", "rule:block-scanners", "rule:x (expiry)".
    pub actor: Option<String>,
    /// The rule behind the action (its own actions and their expiries).
    pub rule: Option<String>,
    /// Action name: notify, throttle, quarantine, block, set_lifecycle,
    /// unthrottle, release, unblock.
    pub action: Option<String>,
    pub mode: Option<RuleMode>,
    /// Event time, Unix ms, inclusive.
    pub since: Option<i64>,
    /// Event time, Unix ms, exclusive.
    pub until: Option<i64>,
    /// The caller's tenant: only actions on this tenant's devices (never on
    /// unprovisioned ones). None = operator-wide. Kept apart from `tenant`
    /// so that a filter can never widen what a caller sees.
    pub scope: Option<String>,
}

impl AuditFilter {
    /// `WHERE` clause (without the keyword; "1" when empty) and its values.
    fn sql(&self) -> (String, Vec<Value>) {
        let mut w: Vec<String> = Vec::new();
        let mut v: Vec<Value> = Vec::new();
        let mut eq = |col: &str, val: Option<String>| {
            if let Some(x) = val {
                w.push(format!("{col} = ?"));
                v.push(Value::Text(x));
            }
        };
        // As for findings: without statistics SQLite cannot tell that an
        // IMSI is more selective than a tenant; `+tenant` keeps the tenant
        // index out of the way when an IMSI is given.
        let tenant_col = if self.imsi.is_some() {
            "+tenant"
        } else {
            "tenant"
        };
        eq("imsi", self.imsi.map(|i| i.to_string()));
        eq(tenant_col, self.tenant.clone());
        eq(tenant_col, self.scope.clone());
        eq("group_id", self.group.clone());
        eq("actor", self.actor.clone());
        eq("rule", self.rule.clone());
        eq("action", self.action.clone());
        eq("mode", self.mode.map(|m| m.as_str().to_string()));
        if let Some(t) = self.since {
            w.push("time >= ?".into());
            v.push(Value::Integer(t));
        }
        if let Some(t) = self.until {
            w.push("time < ?".into());
            v.push(Value::Integer(t));
        }
        if w.is_empty() {
            ("1".into(), v)
        } else {
            (w.join(" AND "), v)
        }
    }
}

/// Position in this page's newest-first order.
pub type AuditCursor = crate::page::PageCursor;

/// A stored answer of the network, with the journal sequence it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    pub seq: u64,
    pub result: ActionResult,
}

/// One action of the trail with the network's answers to it, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub action: Action,
    pub results: Vec<StoredResult>,
}

/// (kbps, state) columns: the parameters of the action kinds that have one.
fn kind_params(k: &ActionKind) -> (Option<i64>, Option<&'static str>) {
    match k {
        ActionKind::Throttle { kbps } => (Some(i64::from(*kbps)), None),
        ActionKind::SetLifecycle { state } => (None, Some(state.as_str())),
        _ => (None, None),
    }
}

fn kind_of(
    name: &str,
    kbps: Option<i64>,
    state: Option<&str>,
) -> std::result::Result<ActionKind, String> {
    Ok(match name {
        "notify" => ActionKind::Notify,
        "throttle" => ActionKind::Throttle {
            kbps: kbps
                .and_then(|k| u32::try_from(k).ok())
                .ok_or("throttle without kbps")?,
        },
        "quarantine" => ActionKind::Quarantine,
        "block" => ActionKind::Block,
        "set_lifecycle" => ActionKind::SetLifecycle {
            state: state.ok_or("set_lifecycle without a state")?.parse()?,
        },
        "unthrottle" => ActionKind::Unthrottle,
        "release" => ActionKind::Release,
        "unblock" => ActionKind::Unblock,
        other => return Err(format!("action {other:?}")),
    })
}

/// Inserts actions and results, ignoring rows already stored (a replay).
/// Returns how many actions were new.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    actions: &[Action],
    results: &[(u64, ActionResult)],
) -> rusqlite::Result<u64> {
    let mut new = 0;
    if !actions.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO actions(id, time, imsi, tenant, group_id, actor, rule, action,
               kbps, state, mode, reason, finding, from_state, to_state, expires, step, enforce)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        for a in actions {
            let (kbps, state) = kind_params(&a.kind);
            new += st.execute(params![
                a.id as i64,
                a.time,
                a.imsi.to_string(),
                a.tenant,
                a.group,
                a.actor,
                a.rule,
                a.kind.name(),
                kbps,
                state,
                a.mode.as_str(),
                a.reason,
                a.finding.map(|f| f as i64),
                a.from.map(Lifecycle::as_str),
                a.to.map(Lifecycle::as_str),
                a.expires,
                i64::from(a.step),
                a.enforce,
            ])? as u64;
        }
    }
    if !results.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO action_results(action, seq, time, imsi, result, detail, attempts, sent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (seq, r) in results {
            let sent = serde_json::to_string(&r.sent)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            st.execute(params![
                r.action as i64,
                *seq as i64,
                r.time,
                r.imsi.to_string(),
                r.result,
                r.detail,
                i64::from(r.attempts),
                sent,
            ])?;
        }
    }
    Ok(new)
}

const COLUMNS: &str = "id, time, imsi, tenant, group_id, actor, rule, action, kbps, state, mode,
    reason, finding, from_state, to_state, expires, step, enforce";

/// Reads one row of `COLUMNS`. Rows are only written by [`insert`], so a
/// value that does not parse means the file was altered: reported as
/// `Corrupt`, never skipped silently.
fn action_of(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Action, String>> {
    let id = r.get::<_, i64>(0)? as u64;
    let time: i64 = r.get(1)?;
    let imsi: String = r.get(2)?;
    let tenant: Option<String> = r.get(3)?;
    let group: Option<String> = r.get(4)?;
    let actor: String = r.get(5)?;
    let rule: Option<String> = r.get(6)?;
    let action: String = r.get(7)?;
    let kbps: Option<i64> = r.get(8)?;
    let state: Option<String> = r.get(9)?;
    let mode: String = r.get(10)?;
    let reason: String = r.get(11)?;
    let finding: Option<i64> = r.get(12)?;
    let from: Option<String> = r.get(13)?;
    let to: Option<String> = r.get(14)?;
    let expires: Option<i64> = r.get(15)?;
    let step: i64 = r.get(16)?;
    let enforce: bool = r.get(17)?;
    let lifecycle = |s: Option<String>| s.map(|s| s.parse::<Lifecycle>()).transpose();
    Ok((|| {
        Ok(Action {
            id,
            time,
            imsi: Digits::parse(&imsi).ok_or_else(|| format!("IMSI {imsi:?}"))?,
            tenant,
            group,
            actor,
            rule,
            kind: kind_of(&action, kbps, state.as_deref())?,
            mode: RuleMode::parse(&mode).ok_or_else(|| format!("mode {mode:?}"))?,
            reason,
            finding: finding.map(|f| f as u64),
            from: lifecycle(from)?,
            to: lifecycle(to)?,
            expires,
            step: u8::try_from(step).map_err(|e| e.to_string())?,
            enforce,
        })
    })()
    .map_err(|e: String| format!("action {id}: {e}")))
}

/// The results of these actions, appended to their entries (oldest first).
fn attach_results(conn: &Connection, err: &Err<'_>, entries: &mut [AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; entries.len()].join(", ");
    let ids: Vec<Value> = entries
        .iter()
        .map(|e| Value::Integer(e.action.id as i64))
        .collect();
    let mut st = conn
        .prepare(&format!(
            "SELECT action, seq, time, imsi, result, detail, attempts, sent FROM action_results
             WHERE action IN ({marks}) ORDER BY action, seq"
        ))
        .map_err(err)?;
    let rows = st
        .query_map(params_from_iter(ids), |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .map_err(err)?;
    for row in rows {
        let (action, seq, time, imsi, result, detail, attempts, sent) = row.map_err(err)?;
        let corrupt = |m: String| StoreError::Corrupt(format!("result {action}/{seq}: {m}"));
        let res = ActionResult {
            action,
            time,
            imsi: Digits::parse(&imsi).ok_or_else(|| corrupt(format!("IMSI {imsi:?}")))?,
            result,
            detail,
            attempts: u32::try_from(attempts).map_err(|e| corrupt(e.to_string()))?,
            sent: serde_json::from_str(&sent).map_err(|e| corrupt(e.to_string()))?,
        };
        if let Some(e) = entries.iter_mut().find(|e| e.action.id == action) {
            e.results.push(StoredResult { seq, result: res });
        }
    }
    Ok(())
}

/// A page, newest first (time desc, id desc), after `cursor`, each action
/// with its results.
pub(crate) fn page(
    conn: &Connection,
    err: &Err<'_>,
    filter: &AuditFilter,
    cursor: Option<AuditCursor>,
    limit: usize,
) -> Result<Vec<AuditEntry>> {
    let (mut w, mut v) = filter.sql();
    if let Some(c) = cursor {
        w.push_str(" AND (time, id) < (?, ?)");
        v.push(Value::Integer(c.time));
        v.push(Value::Integer(c.id.min(i64::MAX as u64) as i64));
    }
    v.push(Value::Integer(limit as i64));
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM actions WHERE {w} ORDER BY time DESC, id DESC LIMIT ?"
        ))
        .map_err(err)?;
    let rows = st.query_map(params_from_iter(v), action_of).map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(AuditEntry {
            action: r.map_err(err)?.map_err(StoreError::Corrupt)?,
            results: Vec::new(),
        });
    }
    attach_results(conn, err, &mut out)?;
    Ok(out)
}

pub(crate) fn one(conn: &Connection, err: &Err<'_>, id: u64) -> Result<Option<AuditEntry>> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM actions WHERE id = ?1"))
        .map_err(err)?;
    let mut rows = st
        .query_map(params![id.min(i64::MAX as u64) as i64], action_of)
        .map_err(err)?;
    let Some(row) = rows.next() else {
        return Ok(None);
    };
    let mut entries = [AuditEntry {
        action: row.map_err(err)?.map_err(StoreError::Corrupt)?,
        results: Vec::new(),
    }];
    drop(rows);
    attach_results(conn, err, &mut entries)?;
    let [entry] = entries;
    Ok(Some(entry))
}

/// Rows in the actions table.
pub(crate) fn count(conn: &Connection, err: &Err<'_>) -> Result<(u64, u64)> {
    let n = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(err)
    };
    Ok((
        n("SELECT count(*) FROM actions")?,
        n("SELECT count(*) FROM action_results")?,
    ))
}
