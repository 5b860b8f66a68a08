//! Subscriptions stored through the API, beside the config's.
//!
//! A row keeps the [`Subscription`] as its JSON (the same serde as
//! `[[notify.subscriptions]]`, so a stored one reads back exactly as the
//! config's would), its tenant in a column for scoped reads and writes, and
//! who made and last changed it. Routing reads them in its own transaction
//! (`outbox::current`), so a committed change applies to the next alert
//! event. Validation (channels, recipients, quiet hours...) is the server's:
//! the store does not know the channels.

use crate::outbox::Subscription;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};

/// At most this many stored subscriptions: each is routed on every alert
/// event, inside the sink's transaction.
pub const MAX_STORED_SUBSCRIPTIONS: u64 = 1000;

/// A subscription stored through the API, with who made and changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSubscription {
    pub sub: Subscription,
    /// Unix ms (wall clock).
    pub created: i64,
    pub created_by: String,
    pub updated: i64,
    pub updated_by: String,
}

/// Every stored subscription by name; an unreadable row is an `Err` with
/// its name, for the caller to report or skip.
pub(crate) fn stored(
    conn: &Connection,
) -> rusqlite::Result<Vec<std::result::Result<StoredSubscription, String>>> {
    conn.prepare_cached(
        "SELECT name, spec, created, created_by, updated, updated_by
         FROM notify_subscriptions ORDER BY name",
    )?
    .query_map([], |r| {
        let name: String = r.get(0)?;
        let spec: String = r.get(1)?;
        Ok(match serde_json::from_str::<Subscription>(&spec) {
            Ok(sub) => Ok(StoredSubscription {
                sub,
                created: r.get(2)?,
                created_by: r.get(3)?,
                updated: r.get(4)?,
                updated_by: r.get(5)?,
            }),
            Err(e) => Err(format!("subscription {name:?}: {e}")),
        })
    })?
    .collect()
}

/// What a scoped write may touch: `None` = any subscription (operator-wide
/// caller), `Some(t)` = only tenant `t`'s.
pub type Scope<'a> = Option<&'a str>;

/// Writes stored subscriptions: its own connection, each change one
/// IMMEDIATE transaction (it waits for the sink's rather than failing).
pub struct SubscriptionWriter {
    conn: Connection,
    path: PathBuf,
}

/// What a create did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The name is taken.
    Exists,
    /// [`MAX_STORED_SUBSCRIPTIONS`] reached.
    Full,
}

impl SubscriptionWriter {
    /// Opens the store at `path` (created and migrated by the server).
    pub fn open(path: impl AsRef<Path>) -> Result<SubscriptionWriter> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.execute_batch("PRAGMA busy_timeout=5000;").map(|_| c))
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Ok(SubscriptionWriter { conn, path })
    }

    fn map(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores a new subscription.
    pub fn create(&mut self, sub: &Subscription, by: &str, now: i64) -> Result<Created> {
        let spec = spec(sub)?;
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
            .query_row("SELECT count(*) FROM notify_subscriptions", [], |r| {
                r.get(0)
            })
            .map_err(map)?;
        if n as u64 >= MAX_STORED_SUBSCRIPTIONS {
            return Ok(Created::Full);
        }
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO notify_subscriptions
                   (name, tenant, spec, created, created_by, updated, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5)",
                params![sub.name, sub.tenant, spec, now, by],
            )
            .map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(if added == 1 {
            Created::Created
        } else {
            Created::Exists
        })
    }

    /// Replaces subscription `sub.name` if it exists within `scope`.
    /// Returns false when it does not (or is another tenant's).
    pub fn replace(
        &mut self,
        sub: &Subscription,
        scope: Scope<'_>,
        by: &str,
        now: i64,
    ) -> Result<bool> {
        let spec = spec(sub)?;
        let n = self
            .conn
            .execute(
                "UPDATE notify_subscriptions SET tenant = ?2, spec = ?3, updated = ?4, updated_by = ?5
                 WHERE name = ?1 AND (?6 IS NULL OR tenant = ?6)",
                params![sub.name, sub.tenant, spec, now, by, scope],
            )
            .map_err(self.map())?;
        Ok(n == 1)
    }

    /// Deletes subscription `name` if it exists within `scope`.
    pub fn delete(&mut self, name: &str, scope: Scope<'_>) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM notify_subscriptions WHERE name = ?1 AND (?2 IS NULL OR tenant = ?2)",
                params![name, scope],
            )
            .map_err(self.map())?;
        Ok(n == 1)
    }

    /// One stored subscription within `scope`.
    pub fn get(&self, name: &str, scope: Scope<'_>) -> Result<Option<StoredSubscription>> {
        one(&self.conn, name, scope)
            .map_err(self.map())?
            .transpose()
    }
}

fn spec(sub: &Subscription) -> Result<String> {
    serde_json::to_string(sub).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn one(
    conn: &Connection,
    name: &str,
    scope: Scope<'_>,
) -> rusqlite::Result<Option<Result<StoredSubscription>>> {
    conn.prepare_cached(
        "SELECT spec, created, created_by, updated, updated_by FROM notify_subscriptions
         WHERE name = ?1 AND (?2 IS NULL OR tenant = ?2)",
    )?
    .query_row(params![name, scope], |r| {
        let spec: String = r.get(0)?;
        Ok(match serde_json::from_str::<Subscription>(&spec) {
            Ok(sub) => Ok(StoredSubscription {
                sub,
                created: r.get(1)?,
                created_by: r.get(2)?,
                updated: r.get(3)?,
                updated_by: r.get(4)?,
            }),
            Err(e) => Err(StoreError::Corrupt(format!("subscription {name:?}: {e}"))),
        })
    })
    .optional()
}

/// Every stored subscription (unreadable rows are an error: the API shows
/// the store as it is rather than hiding a row).
pub(crate) fn all(conn: &Connection) -> rusqlite::Result<Result<Vec<StoredSubscription>>> {
    Ok(stored(conn)?
        .into_iter()
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(StoreError::Corrupt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use simguard_engine::Severity;

    fn sub(name: &str, tenant: Option<&str>) -> Subscription {
        Subscription {
            name: name.into(),
            channel: "mail".into(),
            recipients: vec!["ops@example.com".into()],
            tenant: tenant.map(str::to_string),
            group: None,
            min_severity: Severity::Major,
            types: vec!["scanning".into()],
            on_clear: false,
            quiet_hours: Some("22:00-07:00".parse().unwrap()),
            quiet_min_severity: Severity::Critical,
            utc_offset_minutes: 60,
            cap: Some(5),
        }
    }

    #[test]
    fn stored_subscriptions_round_trip_and_respect_the_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        let mut w = SubscriptionWriter::open(&path).unwrap();
        let a = sub("a-ops", Some("a"));
        assert_eq!(w.create(&a, "ann", 1).unwrap(), Created::Created);
        assert_eq!(w.create(&a, "ann", 2).unwrap(), Created::Exists);
        let mut changed = a.clone();
        changed.cap = None;
        changed.quiet_hours = None;
        // Another tenant's scope does not reach it.
        assert!(!w.replace(&changed, Some("b"), "bob", 3).unwrap());
        assert!(!w.delete("a-ops", Some("b")).unwrap());
        assert!(w.replace(&changed, Some("a"), "ann", 4).unwrap());
        let got = w.get("a-ops", None).unwrap().unwrap();
        assert_eq!(got.sub, changed);
        assert_eq!((got.created, got.updated), (1, 4));
        assert_eq!(got.created_by, "ann");
        assert!(w.get("a-ops", Some("b")).unwrap().is_none());
        let r = Store::open_reader(&path).unwrap();
        assert_eq!(r.subscriptions().unwrap().len(), 1);
        // The routing transaction sees config and stored ones; a stored
        // name the config also has is the config's.
        let cfg = crate::Routing {
            subscriptions: vec![sub("cfg", None)],
            ..Default::default()
        };
        let cur = crate::outbox::current(&store.conn, &cfg).unwrap();
        let names: Vec<&str> = cur.subscriptions.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cfg", "a-ops"]);
        let shadow = crate::Routing {
            subscriptions: vec![sub("a-ops", None)],
            ..Default::default()
        };
        let cur = crate::outbox::current(&store.conn, &shadow).unwrap();
        assert_eq!(cur.subscriptions, shadow.subscriptions);
        assert!(w.delete("a-ops", None).unwrap());
        assert!(r.subscriptions().unwrap().is_empty());
    }
}
