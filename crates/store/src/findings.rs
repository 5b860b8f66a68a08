//! Findings: written by the sink with the batch that covers their journal
//! sequence, read by the API newest first, bounded by a retention policy.

use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use simguard_engine::{Digits, Evidence, Finding, FindingKind, Severity, Subject};

/// How many findings the store keeps. Pruning runs in the sink, inside the
/// transaction that writes new findings, so the table never grows past the
/// bound by more than one batch.
///
/// Default: 500,000 rows and 30 days of event time. A stored finding with
/// its evidence (at most 8 records and 8 flows) is 0.5 to 3 KB, so the
/// default bounds the table to roughly 0.25 to 1.5 GB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FindingsRetention {
    /// Most rows kept; the oldest (by event time) go first. 0 = no limit.
    pub max_rows: u64,
    /// Findings older than this, measured back from the newest finding's
    /// event time (not the wall clock: simulated and replayed time behave
    /// the same), are deleted. 0 = no limit.
    pub max_age_ms: i64,
}

impl Default for FindingsRetention {
    fn default() -> Self {
        FindingsRetention {
            max_rows: 500_000,
            max_age_ms: 30 * 24 * 3_600_000,
        }
    }
}

/// Which findings a query wants. Every field narrows; the default matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Any of these kinds; empty = every kind.
    pub kinds: Vec<FindingKind>,
    /// At least this severity.
    pub min_severity: Option<Severity>,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<Digits>,
    /// Event time, Unix ms, inclusive.
    pub since: Option<i64>,
    /// Event time, Unix ms, exclusive.
    pub until: Option<i64>,
    /// The caller's tenant: only findings of this tenant (never tenantless
    /// ones). None = operator-wide. Kept apart from `tenant` so that a
    /// tenant filter can never widen what a caller sees.
    pub scope: Option<String>,
}

impl FindingFilter {
    /// The same test as the SQL, for findings that never went through a
    /// query (the live stream).
    pub fn matches(&self, f: &Finding) -> bool {
        let tenant_is = |want: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| f.tenant.as_deref() == Some(w))
        };
        (self.kinds.is_empty() || self.kinds.contains(&f.kind))
            && self.min_severity.is_none_or(|s| f.severity >= s)
            && tenant_is(&self.tenant)
            && tenant_is(&self.scope)
            && self
                .group
                .as_deref()
                .is_none_or(|g| f.group.as_deref() == Some(g))
            && self.imsi.is_none_or(|i| f.imsi() == Some(i))
            && self.since.is_none_or(|t| f.time >= t)
            && self.until.is_none_or(|t| f.time < t)
    }

    /// `WHERE` clause (without the keyword; "1" when empty) and its values.
    fn sql(&self) -> (String, Vec<Value>) {
        let mut w: Vec<String> = Vec::new();
        let mut v: Vec<Value> = Vec::new();
        if !self.kinds.is_empty() {
            let marks = vec!["?"; self.kinds.len()].join(", ");
            w.push(format!("kind IN ({marks})"));
            v.extend(self.kinds.iter().map(|k| Value::Text(k.as_str().into())));
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
        // Without statistics SQLite cannot tell that an IMSI is more
        // selective than a tenant; `+tenant` keeps it off the tenant index.
        let tenant_term = if self.imsi.is_some() {
            "+tenant = ?"
        } else {
            "tenant = ?"
        };
        for t in [&self.tenant, &self.scope].into_iter().flatten() {
            w.push(tenant_term.into());
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
pub type FindingCursor = crate::page::PageCursor;

/// Findings newer than a known id (the live stream's catch-up).
#[derive(Debug, Default)]
pub struct FindingsAfter {
    /// Oldest first, at most the limit asked for: the newest ones when more matched.
    pub items: Vec<Finding>,
    /// How many matched but were left out by the limit (the oldest).
    pub left_out: u64,
}

/// Counts of findings by kind and severity.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FindingCounts {
    pub rows: Vec<(FindingKind, Severity, u64)>,
}

fn subject_parts(s: &Subject) -> (&'static str, String) {
    match s {
        Subject::Device(d) => ("device", d.to_string()),
        Subject::Cell(c) => ("cell", c.clone()),
        Subject::Network(n) => ("network", n.clone()),
        Subject::Apn(a) => ("apn", a.clone()),
    }
}

const COLUMNS: &str =
    "id, kind, subject_type, subject, tenant, group_id, severity, time, onset, confidence, evidence";

/// Reads one row of `COLUMNS`. Rows are only written by [`insert`], so a
/// value that does not parse means the file was altered: reported as
/// `Corrupt`, never skipped silently.
fn finding_of(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Finding, String>> {
    let id = r.get::<_, i64>(0)? as u64;
    let kind: String = r.get(1)?;
    let subject_type: String = r.get(2)?;
    let subject: String = r.get(3)?;
    let tenant: Option<String> = r.get(4)?;
    let group: Option<String> = r.get(5)?;
    let severity: String = r.get(6)?;
    let time: i64 = r.get(7)?;
    let onset: i64 = r.get(8)?;
    let confidence: i64 = r.get(9)?;
    let evidence: String = r.get(10)?;
    Ok((|| {
        let subject = match subject_type.as_str() {
            "device" => {
                Subject::Device(Digits::parse(&subject).ok_or_else(|| format!("IMSI {subject:?}"))?)
            }
            "cell" => Subject::Cell(subject),
            "network" => Subject::Network(subject),
            "apn" => Subject::Apn(subject),
            other => return Err(format!("subject type {other:?}")),
        };
        Ok(Finding {
            id,
            kind: kind.parse()?,
            subject,
            tenant,
            group,
            severity: severity.parse()?,
            time,
            onset,
            confidence: u8::try_from(confidence).map_err(|e| e.to_string())?,
            evidence: serde_json::from_str::<Evidence>(&evidence).map_err(|e| e.to_string())?,
        })
    })()
    .map_err(|e| format!("finding {id}: {e}")))
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<std::result::Result<Finding, String>>>,
    err: &Err<'_>,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(err)?.map_err(StoreError::Corrupt)?);
    }
    Ok(out)
}

/// Maps SQLite errors to the store's (with its path).
pub(crate) type Err<'a> = dyn Fn(rusqlite::Error) -> StoreError + 'a;

/// Inserts findings, ignoring ids already stored (a replay). Returns the ids
/// that were new.
pub(crate) fn insert(tx: &Transaction<'_>, findings: &[Finding]) -> rusqlite::Result<Vec<u64>> {
    let mut new = Vec::new();
    if findings.is_empty() {
        return Ok(new);
    }
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO findings(id, kind, subject_type, subject, imsi, tenant, group_id,
           severity, time, onset, confidence, summary, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for f in findings {
        let (stype, subject) = subject_parts(&f.subject);
        let evidence = serde_json::to_string(&f.evidence)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let n = st.execute(params![
            f.id as i64,
            f.kind.as_str(),
            stype,
            subject,
            f.imsi().map(|d| d.to_string()),
            f.tenant,
            f.group,
            f.severity.as_str(),
            f.time,
            f.onset,
            i64::from(f.confidence.min(100)),
            f.evidence.summary,
            evidence,
        ])?;
        if n > 0 {
            new.push(f.id);
        }
    }
    Ok(new)
}

/// Applies the retention policy; returns how many rows were deleted.
/// `rows` is the table's row count before, kept by the caller so that no
/// `count(*)` scan runs per batch.
pub(crate) fn prune(
    tx: &Transaction<'_>,
    retention: FindingsRetention,
    newest: i64,
    rows: u64,
) -> rusqlite::Result<u64> {
    let mut deleted = 0u64;
    if retention.max_age_ms > 0 {
        // An index range on `time`: nothing to do costs one probe.
        deleted += tx.execute(
            "DELETE FROM findings WHERE time < ?1",
            params![newest.saturating_sub(retention.max_age_ms)],
        )? as u64;
    }
    let left = rows.saturating_sub(deleted);
    if retention.max_rows > 0 && left > retention.max_rows {
        deleted += tx.execute(
            "DELETE FROM findings WHERE id IN (SELECT id FROM findings ORDER BY time, id LIMIT ?1)",
            params![(left - retention.max_rows) as i64],
        )? as u64;
    }
    Ok(deleted)
}

pub(crate) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM findings", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// A page, newest first (time desc, id desc), after `cursor`.
pub(crate) fn page(
    conn: &Connection,
    err: &Err<'_>,
    filter: &FindingFilter,
    cursor: Option<FindingCursor>,
    limit: usize,
) -> Result<Vec<Finding>> {
    let (mut w, mut v) = filter.sql();
    if let Some(c) = cursor {
        w.push_str(" AND (time, id) < (?, ?)");
        v.push(Value::Integer(c.time));
        v.push(Value::Integer(c.id as i64));
    }
    v.push(Value::Integer(limit as i64));
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM findings WHERE {w} ORDER BY time DESC, id DESC LIMIT ?"
        ))
        .map_err(err)?;
    let rows = st.query_map(params_from_iter(v), finding_of).map_err(err)?;
    collect(rows, err)
}

pub(crate) fn one(conn: &Connection, err: &Err<'_>, id: u64) -> Result<Option<Finding>> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM findings WHERE id = ?1"))
        .map_err(err)?;
    st.query_row(params![id as i64], finding_of)
        .optional()
        .map_err(err)?
        .transpose()
        .map_err(StoreError::Corrupt)
}

/// Findings with an id above `after` (ids grow with the journal sequence, so
/// this is "committed after"), the newest `limit` of them, oldest first.
/// NOT INDEXED leaves SQLite the rowid range only: `after` is recent, so the
/// range is short, where a tenant or kind index would scan all their rows.
pub(crate) fn after(
    conn: &Connection,
    err: &Err<'_>,
    filter: &FindingFilter,
    after: u64,
    limit: usize,
) -> Result<FindingsAfter> {
    let (w, mut v) = filter.sql();
    v.insert(0, Value::Integer(after.min(i64::MAX as u64) as i64));
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM findings NOT INDEXED WHERE id > ? AND {w}"
        ))
        .and_then(|mut st| st.query_row(params_from_iter(v.clone()), |r| r.get(0)))
        .map_err(err)?;
    v.push(Value::Integer(limit as i64));
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM findings NOT INDEXED WHERE id > ? AND {w} ORDER BY id DESC LIMIT ?"
        ))
        .map_err(err)?;
    let rows = st.query_map(params_from_iter(v), finding_of).map_err(err)?;
    let mut items = collect(rows, err)?;
    items.reverse();
    Ok(FindingsAfter {
        left_out: (total as u64).saturating_sub(items.len() as u64),
        items,
    })
}

pub(crate) fn counts(
    conn: &Connection,
    err: &Err<'_>,
    filter: &FindingFilter,
) -> Result<FindingCounts> {
    let (w, v) = filter.sql();
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT kind, severity, count(*) FROM findings WHERE {w} GROUP BY kind, severity ORDER BY kind, severity"
        ))
        .map_err(err)?;
    let rows = st
        .query_map(params_from_iter(v), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(err)?;
    let mut out = FindingCounts::default();
    for r in rows {
        let (k, s, n) = r.map_err(err)?;
        let k = k.parse::<FindingKind>().map_err(StoreError::Corrupt)?;
        let s = s.parse::<Severity>().map_err(StoreError::Corrupt)?;
        out.rows.push((k, s, n as u64));
    }
    Ok(out)
}
