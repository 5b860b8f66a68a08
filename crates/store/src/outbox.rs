//! The outbox of notifications: routing alert events to subscriptions, and
//! the delivery bookkeeping of the server's worker.
//!
//! Routing runs inside the transaction of the alert change that causes it
//! (raise, auto-clear, a person's clear), so a notification exists exactly
//! when its alert change does: a crash loses neither, a replay repeats
//! neither (ids are deterministic and inserted `OR IGNORE`).
//!
//! - A subscription picks alerts by tenant, group, minimum severity and type
//!   and sends them on one channel, to each of its recipients (a row per
//!   recipient, so caps and receipts are per person; a webhook has none).
//! - Quiet hours (event time, the subscription's UTC offset): below the
//!   quiet severity, the notification is folded into a digest due when the
//!   quiet hours end.
//! - Caps: per recipient (the subscription's `cap`) and per tenant (the
//!   routing's `tenant_caps`), counted per window in `notify_counts`. Over a
//!   cap, the notification is folded into the digest due at the window's
//!   end: never dropped silently.
//! - An alert event no subscription wants gets one `unrouted` row, so "who
//!   was told about this?" always has an answer.
//!
//! Time here is event time (the alert's), so the same journal routes the
//! same way; the worker compares `due` with the wall clock.

use crate::alerts::Alert;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use simguard_engine::Severity;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The channel of rows no subscription wanted.
pub const UNROUTED_CHANNEL: &str = "unrouted";

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 1440;

/// Who gets what, on which channel. From `[[notify.subscriptions]]`, or
/// stored through the API (`subscriptions.rs`, kept as this struct's JSON,
/// so both read through the same serde and the same checks).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Unique; part of every notification id, so renaming one starts its
    /// deduplication afresh.
    pub name: String,
    /// The `[notify.channels.<name>]` it sends on.
    pub channel: String,
    /// Email addresses or MSISDNs; empty for a webhook (the endpoint is the
    /// channel's).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Only alerts of this tenant (None: all, for operator-wide staff).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Only alerts of this device group.
    #[serde(default)]
    pub group: Option<String>,
    /// Only alerts at or above this severity.
    #[serde(
        default,
        deserialize_with = "severity",
        serialize_with = "severity_out"
    )]
    pub min_severity: Severity,
    /// Only these alert types (finding types, `rule:<id>`); empty = all.
    #[serde(default)]
    pub types: Vec<String>,
    /// Also notify when the alert clears.
    #[serde(default = "yes")]
    pub on_clear: bool,
    /// "22:00-07:00" in the subscription's local time: below
    /// `quiet_min_severity`, notifications wait for a digest at the end.
    #[serde(
        default,
        deserialize_with = "quiet",
        serialize_with = "quiet_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub quiet_hours: Option<QuietHours>,
    /// What still goes through in quiet hours (critical by default: a
    /// tracker gone silent at night matters less than a botnet).
    #[serde(
        default = "critical",
        deserialize_with = "severity",
        serialize_with = "severity_out"
    )]
    pub quiet_min_severity: Severity,
    /// Local time's offset from UTC in minutes (fixed; no DST rules).
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// At most this many notifications per recipient per cap window; the
    /// rest go in one digest at the window's end.
    #[serde(default)]
    pub cap: Option<u32>,
}

fn yes() -> bool {
    true
}

fn critical() -> Severity {
    Severity::Critical
}

fn severity<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Severity, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn severity_out<S: Serializer>(s: &Severity, out: S) -> std::result::Result<S::Ok, S::Error> {
    out.serialize_str(s.as_str())
}

fn quiet_out<S: Serializer>(
    q: &Option<QuietHours>,
    out: S,
) -> std::result::Result<S::Ok, S::Error> {
    match q {
        Some(q) => out.collect_str(q),
        None => out.serialize_none(),
    }
}

fn quiet<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<QuietHours>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// A daily span of local time, minutes after midnight; it may wrap midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: u16,
    pub end: u16,
}

impl FromStr for QuietHours {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("quiet hours {s:?}: expected HH:MM-HH:MM, e.g. 22:00-07:00");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let hm = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
        if start == end {
            return Err(format!("quiet hours {s:?}: start and end are equal"));
        }
        Ok(QuietHours { start, end })
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl QuietHours {
    /// When the quiet span containing `time` ends (Unix ms), or None when
    /// `time` is outside it.
    pub fn ends_after(&self, time: i64, utc_offset_minutes: i32) -> Option<i64> {
        let local_min = time.div_euclid(MINUTE_MS) + i64::from(utc_offset_minutes);
        let m = local_min.rem_euclid(DAY_MINUTES);
        let (s, e) = (i64::from(self.start), i64::from(self.end));
        let inside = if s < e {
            m >= s && m < e
        } else {
            m >= s || m < e
        };
        inside.then(|| {
            let to_end = (e - m).rem_euclid(DAY_MINUTES);
            (time.div_euclid(MINUTE_MS) + to_end) * MINUTE_MS
        })
    }
}

/// Everything routing needs: fixed at start from the config, plus the
/// subscriptions stored through the API, which [`current`] adds inside
/// each routing transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// The config's subscriptions (read-only at runtime).
    pub subscriptions: Vec<Subscription>,
    /// Per tenant, at most this many notifications per cap window; "*"
    /// applies to tenants not listed (and to alerts with no tenant).
    pub tenant_caps: BTreeMap<String, u32>,
    /// The caps' window, ms (0 = one hour).
    pub cap_window_ms: i64,
}

impl Routing {
    fn window_ms(&self) -> i64 {
        if self.cap_window_ms > 0 {
            self.cap_window_ms
        } else {
            3_600_000
        }
    }

    fn tenant_cap(&self, tenant: Option<&str>) -> Option<u32> {
        tenant
            .and_then(|t| self.tenant_caps.get(t))
            .or_else(|| self.tenant_caps.get("*"))
            .copied()
    }
}

/// The routing to use inside transaction `tx`: the config's subscriptions
/// and, after them, the stored ones as committed now. Reading them in the
/// routing transaction itself means a subscription applies from the
/// commit that created it, and a deleted one from the commit that removed
/// it, with no cache to invalidate. A stored name that the config also
/// uses (the config changed after it was stored) is left out: names are
/// part of notification ids, and the config's wins.
pub(crate) fn current(tx: &Connection, routing: &Routing) -> rusqlite::Result<Routing> {
    let mut r = routing.clone();
    for s in crate::subscriptions::stored(tx)? {
        match s {
            Ok(s) if r.subscriptions.iter().any(|c| c.name == s.sub.name) => {
                tracing::warn!(subscription = %s.sub.name, "stored subscription shadowed by the config's of the same name");
            }
            Ok(s) => r.subscriptions.push(s.sub),
            Err(e) => tracing::warn!(error = %e, "stored subscription unreadable; not routed to"),
        }
    }
    Ok(r)
}

impl Subscription {
    /// Whether this subscription wants `event` ("raised" or "cleared") of
    /// alert `a`.
    pub fn wants(&self, a: &Alert, event: &str) -> bool {
        (event != "cleared" || self.on_clear)
            && a.severity >= self.min_severity
            && (self.types.is_empty() || self.types.contains(&a.kind))
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| a.tenant.as_deref() == Some(t))
            && self
                .group
                .as_deref()
                .is_none_or(|g| a.group.as_deref() == Some(g))
    }
}

/// Routes one alert event inside the alert change's transaction.
pub(crate) fn route(
    tx: &Connection,
    routing: &Routing,
    a: &Alert,
    event: &str,
    time: i64,
) -> rusqlite::Result<()> {
    let message = format!("{}.{event}", a.id);
    let mut routed = false;
    for sub in routing.subscriptions.iter().filter(|s| s.wants(a, event)) {
        routed = true;
        let none = [String::new()];
        let recipients: &[String] = if sub.recipients.is_empty() {
            &none
        } else {
            &sub.recipients
        };
        for rcpt in recipients {
            let id = notification_id(&message, &sub.name, rcpt);
            let exists = tx
                .prepare_cached("SELECT 1 FROM outbox WHERE id = ?1")?
                .query_row(params![id], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                continue;
            }
            let row = Row {
                id: &id,
                message: &message,
                alert: Some(a.id),
                event,
                sub,
                recipient: rcpt,
                tenant: a.tenant.as_deref(),
                severity: a.severity,
                time,
            };
            let quiet_end = sub
                .quiet_hours
                .filter(|_| a.severity < sub.quiet_min_severity)
                .and_then(|q| q.ends_after(time, sub.utc_offset_minutes));
            if let Some(due) = quiet_end {
                fold(tx, &row, due)?;
                continue;
            }
            let w = routing.window_ms();
            let win = time.div_euclid(w) * w;
            let rkey = format!("r:{}:{}", sub.channel, rcpt);
            let tkey = format!("t:{}", a.tenant.as_deref().unwrap_or(""));
            let tcap = routing.tenant_cap(a.tenant.as_deref());
            let over = |key: &str, cap: Option<u32>| -> rusqlite::Result<bool> {
                let Some(cap) = cap else { return Ok(false) };
                let n: i64 = tx
                    .prepare_cached("SELECT n FROM notify_counts WHERE key = ?1 AND win = ?2")?
                    .query_row(params![key, win], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0);
                Ok(n >= i64::from(cap))
            };
            if over(&rkey, sub.cap)? || over(&tkey, tcap)? {
                fold(tx, &row, win + w)?;
                continue;
            }
            for (key, cap) in [(&rkey, sub.cap), (&tkey, tcap)] {
                if cap.is_some() {
                    tx.prepare_cached(
                        "INSERT INTO notify_counts(key, win, n) VALUES (?1, ?2, 1)
                         ON CONFLICT(key, win) DO UPDATE SET n = n + 1",
                    )?
                    .execute(params![key, win])?;
                }
            }
            insert(tx, &row, "pending", time, None)?;
        }
    }
    if !routed {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox(id, message, alert, event, subscription, channel,
               recipient, tenant, severity, status, created, due)
             VALUES (?1, ?1, ?2, ?3, '', ?4, '', ?5, ?6, 'unrouted', ?7, ?7)",
        )?
        .execute(params![
            message,
            a.id as i64,
            event,
            UNROUTED_CHANNEL,
            a.tenant,
            a.severity.as_str(),
            time
        ])?;
    }
    Ok(())
}

fn notification_id(message: &str, sub: &str, rcpt: &str) -> String {
    if rcpt.is_empty() {
        format!("{message}.{sub}")
    } else {
        format!("{message}.{sub}:{rcpt}")
    }
}

struct Row<'a> {
    id: &'a str,
    message: &'a str,
    alert: Option<u64>,
    event: &'a str,
    sub: &'a Subscription,
    recipient: &'a str,
    tenant: Option<&'a str>,
    severity: Severity,
    time: i64,
}

fn insert(
    tx: &Connection,
    r: &Row<'_>,
    status: &str,
    due: i64,
    digest: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox(id, message, alert, event, subscription, channel,
           recipient, tenant, severity, status, created, due, digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        r.id,
        r.message,
        r.alert.map(|a| a as i64),
        r.event,
        r.sub.name,
        r.sub.channel,
        r.recipient,
        r.tenant,
        r.severity.as_str(),
        status,
        r.time,
        due,
        digest
    ])?;
    Ok(())
}

/// Folds a notification into the digest of its subscription and recipient
/// due at `due`, creating the digest or raising its severity. A digest
/// that already left (a late event, e.g. in a replay) takes no more
/// members: the notification goes on its own instead.
fn fold(tx: &Connection, r: &Row<'_>, due: i64) -> rusqlite::Result<()> {
    let digest = if r.recipient.is_empty() {
        format!("digest.{}.{due}", r.sub.name)
    } else {
        format!("digest.{}:{}.{due}", r.sub.name, r.recipient)
    };
    let existing: Option<(String, String)> = tx
        .prepare_cached("SELECT status, severity FROM outbox WHERE id = ?1")?
        .query_row(params![digest], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match existing {
        None => {
            let d = Row {
                id: &digest,
                message: &digest,
                alert: None,
                event: "digest",
                ..*r
            };
            insert(tx, &d, "pending", due, None)?;
        }
        Some((status, _)) if status != "pending" => {
            return insert(tx, r, "pending", r.time, None);
        }
        Some((_, sev)) => {
            let sev: Severity = sev.parse().unwrap_or_default();
            if r.severity > sev {
                tx.prepare_cached("UPDATE outbox SET severity = ?2 WHERE id = ?1")?
                    .execute(params![digest, r.severity.as_str()])?;
            }
        }
    }
    insert(tx, r, "digested", due, Some(&digest))
}

/// One notification as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// "<alert>.<event>.<subscription>[:<recipient>]" or a digest's id.
    pub id: String,
    /// What receivers deduplicate on (webhook-id): "<alert>.<event>", or
    /// the digest's id.
    pub message: String,
    /// None for a digest.
    pub alert: Option<u64>,
    /// raised, cleared or digest.
    pub event: String,
    pub subscription: String,
    pub channel: String,
    /// Empty for webhooks.
    pub recipient: String,
    pub tenant: Option<String>,
    pub severity: Severity,
    /// pending, retrying, sent, failed, digested or unrouted.
    pub status: String,
    /// Event time of what is notified, Unix ms.
    pub created: i64,
    /// Not sent before this (wall clock, Unix ms).
    pub due: i64,
    pub attempts: u32,
    pub first_attempt: Option<i64>,
    /// The digest this one was folded into.
    pub digest: Option<String>,
    /// The peer's ids for it (SMSC message ids, comma-separated).
    pub reference: Option<String>,
    /// The latest delivery receipt's state (DELIVRD, UNDELIV…).
    pub receipt: Option<String>,
    pub receipt_time: Option<i64>,
    /// When it was sent or given up (wall clock).
    pub done: Option<i64>,
    pub last_error: Option<String>,
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub n: u32,
    /// Unix ms (wall clock) when it started.
    pub time: i64,
    pub latency_ms: i64,
    /// delivered, retry or failed.
    pub result: String,
    pub detail: String,
}

const COLUMNS: &str = "id, message, alert, event, subscription, channel, recipient, tenant,
    severity, status, created, due, attempts, first_attempt, digest, reference, receipt,
    receipt_time, done, last_error";

fn notification_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    let sev: String = r.get(8)?;
    Ok(Notification {
        id: r.get(0)?,
        message: r.get(1)?,
        alert: r.get::<_, Option<i64>>(2)?.map(|a| a as u64),
        event: r.get(3)?,
        subscription: r.get(4)?,
        channel: r.get(5)?,
        recipient: r.get(6)?,
        tenant: r.get(7)?,
        severity: sev.parse().unwrap_or_default(),
        status: r.get(9)?,
        created: r.get(10)?,
        due: r.get(11)?,
        attempts: r.get::<_, i64>(12)? as u32,
        first_attempt: r.get(13)?,
        digest: r.get(14)?,
        reference: r.get(15)?,
        receipt: r.get(16)?,
        receipt_time: r.get(17)?,
        done: r.get(18)?,
        last_error: r.get(19)?,
    })
}

/// Per channel and status, how many notifications (for delivery stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub channel: String,
    pub pending: u64,
    pub retrying: u64,
    pub sent: u64,
    pub failed: u64,
    pub digested: u64,
}

pub(crate) fn notifications_of(
    conn: &Connection,
    alert: Option<u64>,
) -> rusqlite::Result<Vec<Notification>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE ?1 IS NULL OR alert = ?1 ORDER BY created, id"
    ))?
    .query_map(params![alert.map(|a| a as i64)], notification_of)?
    .collect()
}

pub(crate) fn notification(conn: &Connection, id: &str) -> rusqlite::Result<Option<Notification>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?
        .query_row(params![id], notification_of)
        .optional()
}

pub(crate) fn attempts(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Attempt>> {
    conn.prepare_cached(
        "SELECT n, time, latency_ms, result, detail FROM outbox_attempts
         WHERE notification = ?1 ORDER BY n",
    )?
    .query_map(params![id], |r| {
        Ok(Attempt {
            n: r.get::<_, i64>(0)? as u32,
            time: r.get(1)?,
            latency_ms: r.get(2)?,
            result: r.get(3)?,
            detail: r.get(4)?,
        })
    })?
    .collect()
}

pub(crate) fn digest_members(
    conn: &Connection,
    digest: &str,
) -> rusqlite::Result<Vec<Notification>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE digest = ?1 ORDER BY created, id"
    ))?
    .query_map(params![digest], notification_of)?
    .collect()
}

pub(crate) fn channel_counts(conn: &Connection) -> rusqlite::Result<Vec<ChannelCounts>> {
    let mut out: BTreeMap<String, ChannelCounts> = BTreeMap::new();
    let mut st = conn.prepare_cached(
        "SELECT channel, status, count(*) FROM outbox WHERE status != 'unrouted'
         GROUP BY channel, status",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? as u64,
        ))
    })?;
    for row in rows {
        let (channel, status, n) = row?;
        let c = out.entry(channel.clone()).or_insert_with(|| ChannelCounts {
            channel,
            ..ChannelCounts::default()
        });
        match status.as_str() {
            "pending" => c.pending += n,
            "retrying" => c.retrying += n,
            "sent" => c.sent += n,
            "failed" => c.failed += n,
            "digested" => c.digested += n,
            _ => {}
        }
    }
    Ok(out.into_values().collect())
}

/// What one attempt came to, as the worker records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// Sent; the peer's ids for it, if any.
    Delivered { reference: Option<String> },
    /// Try again at `due` (wall clock, Unix ms).
    Retry { due: i64 },
    /// Given up: a permanent error, or retries ran out.
    Failed,
}

/// The delivery worker's connection: claims nothing (one worker per
/// store), reads what is due and records each attempt in one transaction
/// with the notification's new status, so a crash between send and record
/// resends (at least once, same id) and never loses.
pub struct OutboxWriter {
    conn: Connection,
    path: PathBuf,
}

impl OutboxWriter {
    /// Opens the store at `path` (created and migrated by the server).
    pub fn open(path: impl AsRef<Path>) -> Result<OutboxWriter> {
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
        // NORMAL: in WAL mode a commit survives a process crash (kill -9)
        // without an fsync; only a power loss can forget the latest
        // records, and then the notification is sent again with the same
        // id, which receivers deduplicate. FULL cost one fsync per attempt,
        // which capped delivery at ~40 attempts/s on a busy disk.
        conn.execute_batch("PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;")
            .map_err(map)?;
        Ok(OutboxWriter { conn, path })
    }

    fn map(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Notifications due at `now` (pending or retrying), oldest due first.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<Notification>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE status IN ('pending', 'retrying') AND due <= ?1
                 ORDER BY due, id LIMIT ?2"
            ))
            .and_then(|mut st| {
                st.query_map(params![now, limit as i64], notification_of)?
                    .collect()
            })
            .map_err(self.map())
    }

    /// What is due at `now` on one channel, oldest due first.
    pub fn due_on(&self, channel: &str, now: i64, limit: usize) -> Result<Vec<Notification>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE status IN ('pending', 'retrying')
                   AND channel = ?1 AND due <= ?2 ORDER BY due, id LIMIT ?3"
            ))
            .and_then(|mut st| {
                st.query_map(params![channel, now, limit as i64], notification_of)?
                    .collect()
            })
            .map_err(self.map())
    }

    /// Outbox retention: deletes up to `limit` finished notifications
    /// (sent, failed, digested, unrouted) that finished before `before`
    /// (ms: the last attempt's wall time; for digested and unrouted rows,
    /// which have none, their `due` in event time), with their attempts and
    /// receipt references, in one
    /// transaction; and the cap counts of windows that began before it. A
    /// digested notification stays while its digest is still to be sent
    /// (the digest is written from its members). Pending and retrying ones
    /// are never deleted, however old. Returns how many were deleted; call
    /// again while that is `limit`.
    pub fn prune(&mut self, before: i64, limit: usize) -> Result<usize> {
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map)?;
        let ids: Vec<String> = tx
            .prepare_cached(
                "SELECT o.id FROM outbox o
                 WHERE o.status IN ('sent', 'failed', 'digested', 'unrouted')
                   AND coalesce(o.done, o.due) < ?1
                   AND NOT (o.status = 'digested' AND EXISTS (
                       SELECT 1 FROM outbox d
                       WHERE d.id = o.digest AND d.status IN ('pending', 'retrying')))
                 LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![before, limit as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(&map)?;
        for id in &ids {
            for sql in [
                "DELETE FROM outbox_attempts WHERE notification = ?1",
                "DELETE FROM outbox_refs WHERE notification = ?1",
                "DELETE FROM outbox WHERE id = ?1",
            ] {
                tx.prepare_cached(sql)
                    .and_then(|mut st| st.execute(params![id]))
                    .map_err(&map)?;
            }
        }
        tx.execute("DELETE FROM notify_counts WHERE win < ?1", params![before])
            .map_err(&map)?;
        tx.commit().map_err(&map)?;
        Ok(ids.len())
    }

    /// The earliest `due` of anything waiting, to sleep until then.
    pub fn next_due(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(due) FROM outbox WHERE status IN ('pending', 'retrying')",
                [],
                |r| r.get(0),
            )
            .map_err(self.map())
    }

    /// The earliest `due` after `now` (what is due by `now` is being sent).
    pub fn next_due_after(&self, now: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(due) FROM outbox WHERE status IN ('pending', 'retrying') AND due > ?1",
                params![now],
                |r| r.get(0),
            )
            .map_err(self.map())
    }

    /// The notifications folded into a digest.
    pub fn digest_members(&self, digest: &str) -> Result<Vec<Notification>> {
        digest_members(&self.conn, digest).map_err(self.map())
    }

    /// The alerts behind notifications, by id.
    pub fn alert(&self, id: u64) -> Result<Option<Alert>> {
        crate::alerts::one_tx(&self.conn, id)
            .map_err(self.map())?
            .transpose()
            .map_err(StoreError::Corrupt)
    }

    /// Records one attempt (started at `time`, taking `latency_ms`) and the
    /// notification's new state, atomically.
    pub fn record(
        &mut self,
        id: &str,
        time: i64,
        latency_ms: i64,
        result: &AttemptResult,
        detail: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map)?;
        let n: i64 = tx
            .query_row(
                "SELECT attempts FROM outbox WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(map)?
            .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))?;
        let (kind, status, due, done, reference) = match result {
            AttemptResult::Delivered { reference } => (
                "delivered",
                "sent",
                None,
                Some(time + latency_ms),
                reference.as_deref(),
            ),
            AttemptResult::Retry { due } => ("retry", "retrying", Some(*due), None, None),
            AttemptResult::Failed => ("failed", "failed", None, Some(time + latency_ms), None),
        };
        tx.execute(
            "INSERT INTO outbox_attempts(notification, n, time, latency_ms, result, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, n + 1, time, latency_ms, kind, detail],
        )
        .map_err(map)?;
        let error = (kind != "delivered").then_some(detail);
        tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, first_attempt = coalesce(first_attempt, ?2),
               status = ?3, due = coalesce(?4, due), done = ?5, reference = coalesce(?6, reference),
               last_error = coalesce(?7, last_error)
             WHERE id = ?1",
            params![id, time, status, due, done, reference, error],
        )
        .map_err(map)?;
        for r in reference.into_iter().flat_map(|r| r.split(',')) {
            let r = r.trim();
            if !r.is_empty() {
                tx.execute(
                    "INSERT OR REPLACE INTO outbox_refs(reference, notification) VALUES (?1, ?2)",
                    params![format!("{}:{r}", channel_of(&tx, id).map_err(map)?), id],
                )
                .map_err(map)?;
            }
        }
        tx.commit().map_err(map)
    }

    /// Holds a notification back without an attempt (its channel's circuit
    /// is open).
    pub fn defer(&mut self, id: &str, due: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE outbox SET due = ?2 WHERE id = ?1 AND status IN ('pending', 'retrying')",
                params![id, due],
            )
            .map(|_| ())
            .map_err(self.map())
    }

    /// Matches a delivery receipt from `channel` to its notification by the
    /// peer's id. Returns the notification's id, or None when unknown.
    pub fn receipt(
        &mut self,
        channel: &str,
        reference: &str,
        state: &str,
        time: i64,
    ) -> Result<Option<String>> {
        let map = self.map();
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT notification FROM outbox_refs WHERE reference = ?1",
                params![format!("{channel}:{reference}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(&map)?;
        if let Some(id) = &id {
            self.conn
                .execute(
                    "UPDATE outbox SET receipt = ?2, receipt_time = ?3 WHERE id = ?1",
                    params![id, state, time],
                )
                .map_err(&map)?;
        }
        Ok(id)
    }

    /// Per channel and status counts.
    pub fn channel_counts(&self) -> Result<Vec<ChannelCounts>> {
        channel_counts(&self.conn).map_err(self.map())
    }
}

fn channel_of(tx: &Connection, id: &str) -> rusqlite::Result<String> {
    tx.query_row(
        "SELECT channel FROM outbox WHERE id = ?1",
        params![id],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q: QuietHours = "22:00-07:00".parse().unwrap();
        let day = 86_400_000i64 * 20_000;
        let at = |h: i64, m: i64| day + (h * 60 + m) * MINUTE_MS;
        assert_eq!(
            q.ends_after(at(23, 30), 0),
            Some(day + 86_400_000 + 7 * 60 * MINUTE_MS)
        );
        assert_eq!(q.ends_after(at(6, 59), 0), Some(at(7, 0)));
        assert_eq!(q.ends_after(at(7, 0), 0), None);
        assert_eq!(q.ends_after(at(12, 0), 0), None);
        // 21:30 UTC is 23:30 at UTC+2: quiet until 07:00 local = 05:00 UTC.
        assert_eq!(
            q.ends_after(at(21, 30), 120),
            Some(day + 86_400_000 + 5 * 60 * MINUTE_MS)
        );
    }

    #[test]
    fn quiet_hours_parse_errors_name_the_value() {
        assert!("22:00"
            .parse::<QuietHours>()
            .unwrap_err()
            .contains("HH:MM-HH:MM"));
        assert!("25:00-07:00".parse::<QuietHours>().is_err());
        assert!("07:00-07:00"
            .parse::<QuietHours>()
            .unwrap_err()
            .contains("equal"));
        assert_eq!(
            "09:30-17:15".parse::<QuietHours>().unwrap(),
            QuietHours {
                start: 570,
                end: 1035
            }
        );
    }
}
