//! Embedded schema migrations, applied in order at open and tracked with
//! `PRAGMA user_version`. Append new steps; never edit a released one.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

const STEPS: &[&str] = &[
    // 1: inventory, usage roll-ups, snapshots index, API keys.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL);
     CREATE TABLE device_groups (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL REFERENCES tenants(id),
        name TEXT NOT NULL,
        profile TEXT NOT NULL
     );
     CREATE TABLE devices (
        imsi TEXT PRIMARY KEY,
        iccid TEXT,
        msisdn TEXT,
        bound_imei TEXT,
        tenant TEXT NOT NULL REFERENCES tenants(id),
        group_id TEXT NOT NULL REFERENCES device_groups(id),
        lifecycle TEXT NOT NULL,
        label TEXT
     );
     CREATE INDEX devices_group ON devices(group_id);
     CREATE INDEX devices_tenant ON devices(tenant);
     -- imsi is the packed Digits integer: compact and fast to range-scan.
     CREATE TABLE usage_hourly (
        imsi INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        up INTEGER NOT NULL,
        down INTEGER NOT NULL,
        PRIMARY KEY (imsi, hour)
     ) WITHOUT ROWID;
     CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY,
        created INTEGER NOT NULL,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        devices INTEGER NOT NULL
     );
     CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        tenant TEXT,
        created INTEGER NOT NULL
     );",
    // 2: findings. `id` is the engine's deterministic id ((journal seq << 8) |
    // index), so a replay that produces the same finding again is ignored
    // (INSERT OR IGNORE). Times are Unix ms of event time. `imsi` is the
    // digit string for device findings, NULL otherwise; `tenant` is NULL when
    // the subject belongs to no tenant (only operator-wide keys see those).
    // The indexes serve the API's newest-first pages: by time, and by time
    // within an IMSI, a tenant or a kind. Kind and severity ride along in the
    // time and tenant indexes so that summaries (counts by kind and
    // severity) read the index alone, never the rows with their evidence.
    "CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('device', 'cell', 'network', 'apn')),
        subject TEXT NOT NULL,
        imsi TEXT,
        tenant TEXT,
        group_id TEXT,
        severity TEXT NOT NULL CHECK (severity IN ('warning', 'minor', 'major', 'critical')),
        time INTEGER NOT NULL,
        onset INTEGER NOT NULL,
        confidence INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
        summary TEXT NOT NULL,
        evidence TEXT NOT NULL
     );
     CREATE INDEX findings_time ON findings(time, id, kind, severity);
     CREATE INDEX findings_imsi ON findings(imsi, time, id) WHERE imsi IS NOT NULL;
     CREATE INDEX findings_tenant ON findings(tenant, time, id, kind, severity);
     CREATE INDEX findings_kind ON findings(kind, time, id, severity);",
];

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let map = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map)?;
    let known = STEPS.len() as i64;
    if current > known {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: current,
            known,
        });
    }
    for (i, step) in STEPS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(map)?;
        tx.execute_batch(step).map_err(map)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(map)?;
        tx.commit().map_err(map)?;
        tracing::info!(version = i + 1, store = %path.display(), "store schema migrated");
    }
    Ok(())
}
