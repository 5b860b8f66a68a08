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
    // 3: the audit trail of automatic response, append-only. `actions.id` is
    // the engine's deterministic action id and `action_results` is keyed by
    // (action id, journal seq of the result), so replays insert nothing twice
    // (INSERT OR IGNORE). `imsi` is the digit string; `tenant` is NULL for
    // unprovisioned devices (only operator-wide keys see those). `kbps` is
    // set for throttle, `state` for set_lifecycle. `sent` is a JSON array of
    // the lines sent to the network. No foreign key from results to
    // actions: the sink writes both in journal order anyway, and a result
    // must never be refused.
    "CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        imsi TEXT NOT NULL,
        tenant TEXT,
        group_id TEXT,
        actor TEXT NOT NULL,
        rule TEXT,
        action TEXT NOT NULL,
        kbps INTEGER,
        state TEXT,
        mode TEXT NOT NULL CHECK (mode IN ('enforce', 'dry-run')),
        reason TEXT NOT NULL,
        finding INTEGER,
        from_state TEXT,
        to_state TEXT,
        expires INTEGER,
        step INTEGER NOT NULL,
        enforce INTEGER NOT NULL CHECK (enforce IN (0, 1))
     );
     CREATE INDEX actions_time ON actions(time, id);
     CREATE INDEX actions_imsi ON actions(imsi, time, id);
     CREATE INDEX actions_tenant ON actions(tenant, time, id);
     CREATE INDEX actions_rule ON actions(rule, time, id) WHERE rule IS NOT NULL;
     CREATE INDEX actions_actor ON actions(actor, time, id);
     CREATE INDEX actions_finding ON actions(finding) WHERE finding IS NOT NULL;
     CREATE TABLE action_results (
        action INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        imsi TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        sent TEXT NOT NULL,
        PRIMARY KEY (action, seq)
     ) WITHOUT ROWID;",
    // 4: alerts (alerts.rs). `id` is the key of the occurrence that opened
    // the alert (finding id << 1, or action id << 1 | 1); `alert_sources`
    // holds every occurrence's key, so a replayed one changes nothing.
    // `last_source` is the latest occurrence's key (it grows with the
    // journal sequence: an auto-clear only clears what was raised before
    // it). One active alert per (subject, type): a partial unique index.
    // The outbox holds one row per notification, written in the transaction
    // of the alert change that causes it (`id` = "<alert>.<event>").
    "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('device', 'cell', 'network', 'apn')),
        subject TEXT NOT NULL,
        imsi TEXT,
        tenant TEXT,
        group_id TEXT,
        severity TEXT NOT NULL CHECK (severity IN ('warning', 'minor', 'major', 'critical')),
        state TEXT NOT NULL CHECK (state IN ('active', 'cleared')),
        acknowledged INTEGER NOT NULL CHECK (acknowledged IN (0, 1)),
        start INTEGER NOT NULL,
        last INTEGER NOT NULL,
        end_time INTEGER,
        ack_time INTEGER,
        ack_by TEXT,
        clear_time INTEGER,
        cleared_by TEXT,
        count INTEGER NOT NULL,
        finding INTEGER,
        summary TEXT NOT NULL,
        last_source INTEGER NOT NULL
     );
     CREATE UNIQUE INDEX alerts_active ON alerts(subject_type, subject, kind) WHERE state = 'active';
     CREATE INDEX alerts_start ON alerts(start, id);
     CREATE INDEX alerts_tenant ON alerts(tenant, start, id);
     CREATE INDEX alerts_imsi ON alerts(imsi, start, id) WHERE imsi IS NOT NULL;
     CREATE TABLE alert_sources (
        source INTEGER PRIMARY KEY,
        alert INTEGER NOT NULL
     );
     CREATE TABLE alert_comments (
        id INTEGER PRIMARY KEY,
        alert INTEGER NOT NULL REFERENCES alerts(id),
        time INTEGER NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL
     );
     CREATE INDEX alert_comments_alert ON alert_comments(alert, id);
     CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        alert INTEGER NOT NULL,
        event TEXT NOT NULL CHECK (event IN ('raised', 'cleared')),
        channel TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending')),
        created INTEGER NOT NULL
     );
     CREATE INDEX outbox_alert ON outbox(alert);
     CREATE INDEX outbox_pending ON outbox(status, created) WHERE status = 'pending';",
    // 5: routing and delivery (outbox.rs). The outbox becomes one row per
    // (alert event, subscription, recipient): `id` =
    // "<alert>.<event>.<subscription>[:<recipient>]" (or
    // "digest.<subscription>[:<recipient>].<due>"), `message` = what receivers
    // deduplicate on ("<alert>.<event>", the webhook-id). `due` (Unix ms)
    // holds a row back: quiet hours, a digest window, the next retry.
    // Rows folded into a digest point at it. `notify_counts` counts what
    // each cap key (recipient or tenant) was sent per window, so a cap holds
    // across restarts. `outbox_refs` maps a peer's ids (SMSC message ids,
    // one per part) back to the notification for delivery receipts. Every
    // attempt is kept for the API. Step 4's rows were
    // never routed: they carry over as 'unrouted'.
    "ALTER TABLE outbox RENAME TO outbox_v4;
     DROP INDEX outbox_alert;
     DROP INDEX outbox_pending;
     CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        message TEXT NOT NULL,
        alert INTEGER,
        event TEXT NOT NULL CHECK (event IN ('raised', 'cleared', 'digest')),
        subscription TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        tenant TEXT,
        severity TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'retrying', 'sent', 'failed', 'digested', 'unrouted')),
        created INTEGER NOT NULL,
        due INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt INTEGER,
        digest TEXT,
        reference TEXT,
        receipt TEXT,
        receipt_time INTEGER,
        done INTEGER,
        last_error TEXT
     );
     INSERT INTO outbox(id, message, alert, event, subscription, channel, recipient,
                        tenant, severity, status, created, due)
        SELECT o.id, o.id, o.alert, o.event, '', o.channel, '', a.tenant, a.severity,
               'unrouted', o.created, o.created
        FROM outbox_v4 o JOIN alerts a ON a.id = o.alert;
     DROP TABLE outbox_v4;
     CREATE INDEX outbox_alert ON outbox(alert);
     CREATE INDEX outbox_due ON outbox(due) WHERE status IN ('pending', 'retrying');
     CREATE INDEX outbox_channel_due ON outbox(channel, due) WHERE status IN ('pending', 'retrying');
     CREATE INDEX outbox_digest ON outbox(digest) WHERE digest IS NOT NULL;
     CREATE TABLE outbox_refs (
        reference TEXT PRIMARY KEY,
        notification TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE notify_counts (
        key TEXT NOT NULL,
        win INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (key, win)
     ) WITHOUT ROWID;
     CREATE TABLE outbox_attempts (
        notification TEXT NOT NULL,
        n INTEGER NOT NULL,
        time INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        result TEXT NOT NULL CHECK (result IN ('delivered', 'retry', 'failed')),
        detail TEXT NOT NULL,
        PRIMARY KEY (notification, n)
     ) WITHOUT ROWID;",
    // 6: access (users.rs). People log in as users (argon2id PHC strings,
    // never the password); a session is kept by the SHA-256 of its cookie
    // secret, so a leaked store opens no session. The CSRF token is stored
    // as is: it is worthless without the cookie, and the console must read
    // it back after a reload. Idle expiry is judged from `last_seen` at
    // lookup (the timeout is configuration); `expires` is the absolute end.
    // API keys are revoked, not deleted, so the audit trail's actor names
    // keep meaning something.
    "ALTER TABLE api_keys ADD COLUMN revoked INTEGER;
     CREATE INDEX api_keys_tenant ON api_keys(tenant);
     CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        tenant TEXT,
        created INTEGER NOT NULL,
        password_changed INTEGER NOT NULL
     );
     CREATE INDEX users_tenant ON users(tenant);
     CREATE TABLE sessions (
        id_hash BLOB PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        expires INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX sessions_user ON sessions(user);
     CREATE INDEX sessions_expires ON sessions(expires);",
    // 7: geolocation (cells.rs, locations.rs). `cells` is keyed like
    // OpenCelliD by (mcc, mnc, area, cell), ordered (mcc, mnc, cell, area)
    // so that an ECI is also found in any area of its PLMN; `mnc` is a
    // number (OpenCelliD drops leading zeros), `cell` the CI, SAC, ECI or
    // NCI, `range_m` OpenCelliD's range, `source` the import's format.
    // `locations` is the trail per device (imsi = packed Digits, time =
    // event ms), with the serving network and cell it was resolved from;
    // `device_positions` the newest point of each device, for the map.
    // The CHECKs are OR chains, not IN lists: SQLite evaluates an IN list
    // through an ephemeral table built per row, which halved the speed of
    // a bulk import.
    "CREATE TABLE cells (
        mcc INTEGER NOT NULL,
        mnc INTEGER NOT NULL,
        cell INTEGER NOT NULL,
        area INTEGER NOT NULL,
        radio TEXT NOT NULL CHECK (radio = 'LTE' OR radio = 'GSM' OR radio = 'UMTS'
                                   OR radio = 'NR' OR radio = 'CDMA'),
        lat REAL NOT NULL,
        lon REAL NOT NULL,
        range_m INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (mcc, mnc, cell, area)
     ) WITHOUT ROWID;
     CREATE TABLE locations (
        imsi INTEGER NOT NULL,
        time INTEGER NOT NULL,
        network TEXT,
        cell_type TEXT,
        cell_plmn TEXT,
        area INTEGER,
        cell INTEGER,
        lat REAL NOT NULL,
        lon REAL NOT NULL,
        accuracy_m INTEGER NOT NULL,
        source TEXT NOT NULL CHECK (source = 'cell' OR source = 'country'),
        PRIMARY KEY (imsi, time)
     ) WITHOUT ROWID;
     CREATE TABLE device_positions (
        imsi INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        lat REAL NOT NULL,
        lon REAL NOT NULL,
        accuracy_m INTEGER NOT NULL,
        source TEXT NOT NULL CHECK (source = 'cell' OR source = 'country')
     );",
    // 8: subscriptions stored through the API (subscriptions.rs), beside
    // the config's. `spec` is the subscription's JSON (the same fields as
    // [[notify.subscriptions]]); `tenant` repeats its tenant for scoped
    // reads and writes; who made and last changed each is kept. Names are
    // unique with the config's (they are part of notification ids), which
    // the server checks against its config.
    "CREATE TABLE notify_subscriptions (
        name TEXT PRIMARY KEY,
        tenant TEXT,
        spec TEXT NOT NULL,
        created INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        updated INTEGER NOT NULL,
        updated_by TEXT NOT NULL
     );
     CREATE INDEX notify_subscriptions_tenant ON notify_subscriptions(tenant);",
    // 9: outbox retention (`OutboxWriter::prune`). Finished notifications
    // are found by when they finished (`done`, else `due`: digested and
    // unrouted rows have no attempt), and their receipt references by
    // notification, so that a pass costs index probes, not scans.
    "CREATE INDEX outbox_finished ON outbox(coalesce(done, due))
        WHERE status IN ('sent', 'failed', 'digested', 'unrouted');
     CREATE INDEX outbox_refs_notification ON outbox_refs(notification);",
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
